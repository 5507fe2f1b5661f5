"""Runtime settings: one typed object from KUBELLM_RUNTIME_* variables, loaded once."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Limits and auth of one serving replica."""

    model_config = SettingsConfigDict(
        env_prefix="KUBELLM_RUNTIME_", frozen=True, extra="forbid", populate_by_name=True
    )

    max_inflight: int = Field(default=256, ge=1)
    """Requests one replica admits at once (generating or queued in the engine); more get 429."""
    request_timeout_s: float = Field(default=600.0, gt=0)
    """A generation still running after this long is aborted (504)."""
    drain_seconds: float = Field(default=30.0, ge=0)
    """On SIGTERM: stop accepting, let in-flight requests finish for at most this long."""
    retry_after_s: int = Field(default=1, ge=1)
    """Retry-After sent with 429."""
    api_key: SecretStr | None = Field(default=None, validation_alias="KUBELLM_API_KEY")
    """If set (from the LLMDeployment's apiKeySecretRef), clients must send it as a Bearer token."""
