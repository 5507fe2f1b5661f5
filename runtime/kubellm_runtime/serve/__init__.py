"""Serving entry points: local mode (`python -m kubellm_runtime.serve`) and the Ray Serve app."""
