"""LoRA/QLoRA fine-tuning of one FineTuneJob (``python -m kubellm_runtime.train``)."""
