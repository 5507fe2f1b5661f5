"""kubellm operator: reconciles LLMDeployment and FineTuneJob into KubeRay objects."""
