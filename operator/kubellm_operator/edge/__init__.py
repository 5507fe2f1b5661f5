"""The edge: the only code that calls the Kubernetes API server or a Ray head; failures are
translated once, here."""
