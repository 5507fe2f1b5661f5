"""Runtime settings: one typed object from KUBELLM_RUNTIME_* variables, loaded once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubellm_runtime.contract import (
    API_KEY_ENV,
    MODEL_CACHE_DIR,
    PVC_ROOT,
    SETTINGS_ENV_PREFIX,
    LimitsArgs,
)


class AuthConfigError(ValueError):
    """Auth is on, but there is no usable key: the replica must not serve (fail closed)."""


def _usable_key(raw: str, where: str) -> SecretStr:
    key = raw.strip()  # a key written to a Secret with `echo` ends with a newline
    if not key:
        raise AuthConfigError(
            f"{where} is set but empty: auth would be off; unset it to serve without a key"
        )
    return SecretStr(key)


class RuntimeSettings(BaseSettings):
    """Limits and auth of one serving replica."""

    model_config = SettingsConfigDict(
        env_prefix=SETTINGS_ENV_PREFIX, frozen=True, extra="forbid", populate_by_name=True
    )

    max_inflight: int = Field(default=256, ge=1)
    """Requests one replica admits at once (generating or queued in the engine); more get 429."""
    request_timeout_s: float = Field(default=600.0, gt=0)
    """A generation still running after this long is aborted (504)."""
    drain_seconds: float = Field(default=30.0, ge=0)
    """On SIGTERM: stop accepting, let in-flight requests finish for at most this long."""
    keep_alive_s: float = Field(default=5.0, gt=0)
    """Local mode: an idle keep-alive connection is closed after this long."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """Local mode: a connection whose request head is not complete this long after it opened
    (or after its last answer) is closed: idle half-open connections cannot pile up."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """Local mode: a request whose body stalls this long between two chunks gets a 408."""
    retry_after_s: int = Field(default=1, ge=1)
    """Retry-After sent with 429."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 beyond): 4 MiB holds a million tokens of text."""
    api_key: SecretStr | None = Field(default=None, validation_alias=API_KEY_ENV)
    """If set (from the LLMDeployment's apiKeySecretRef), clients must send it as a Bearer token."""
    pvc_root: Path = Path(PVC_ROOT)
    """Where the pod mounts PersistentVolumeClaims: pvc://claim/path is pvc_root/claim/path."""
    model_cache_dir: Path = Path(MODEL_CACHE_DIR)
    """Where s3:// and gs:// sources are downloaded; shared per node, they download once."""
    max_adapter_bytes: int = Field(default=2 * 1024**3, ge=1024)
    """Largest LoRA adapter accepted (all its files): a bigger one is refused before download."""
    max_request_adapters: int = Field(default=8, ge=1)
    """Adapters loaded on demand for requests (/chat's adapter_path) kept at once; the least
    recently used is unloaded beyond it."""
    admin_key: SecretStr | None = None
    """Local mode only: with it, /v1/load_lora_adapter and /v1/unload_lora_adapter are served
    to clients that send it (Authorization: Bearer); it must differ from the API key. On Ray
    Serve adapters come from the LLMDeployment (spec.adapters) and these routes are not served."""
    download_timeout_s: float = Field(default=60.0, gt=0)
    """Connect and read timeout of each object-store request (a stalled transfer is resumed)."""
    download_concurrency: int = Field(default=16, ge=1, le=64)
    """Ranged reads in flight at once while downloading a source (over all its files)."""
    download_piece_mib: int = Field(default=64, ge=1, le=4096)
    """Size of each ranged read of a large file (each piece resumes on its own)."""
    download_attempts: int = Field(default=5, ge=1)
    """Attempts per file; each one resumes where the last stopped."""
    download_lock_timeout_s: float = Field(default=3600.0, gt=0)
    """How long a replica waits for another one downloading the same source."""
    job_ttl_s: float = Field(default=86_400.0, gt=0)
    """How long a finished job_id / Idempotency-Key result is kept (a repeat gets it back)."""
    job_max_entries: int = Field(default=10_000, ge=1)
    """Finished jobs kept at most (the oldest go first)."""
    job_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Bytes of finished results kept at most (the oldest go first; a bigger one is not kept)."""
    job_store_url: SecretStr | None = None
    """redis:// or rediss:// URL of a Redis the replicas share for jobs. Unset: on Ray Serve,
    a table shared inside the Ray cluster; in local mode, this process's memory."""
    job_scope: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._/-]{1,200}$")
    """Keeps deployments apart in a shared job store (default: the served model name); set it
    (spec.env) when deployments that serve one model name share a Redis."""
    log_format: Literal["json", "console"] = "json"
    """json: one object per line with request_id, model, adapter and job_id; console: for people."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("api_key", "admin_key", mode="before")
    @classmethod
    def _strip_key(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        where = {"api_key": API_KEY_ENV, "admin_key": f"{SETTINGS_ENV_PREFIX}ADMIN_KEY"}
        return _usable_key(raw, where[str(info.field_name)])

    @model_validator(mode="after")
    def _distinct_keys(self) -> RuntimeSettings:
        admin, api = self.admin_key, self.api_key
        if (
            admin is not None
            and api is not None
            and admin.get_secret_value() == api.get_secret_value()
        ):
            raise AuthConfigError("KUBELLM_RUNTIME_ADMIN_KEY must differ from the API key")
        return self

    @field_validator("job_store_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    def with_auth(self, api_key_env: str | None) -> RuntimeSettings:
        """These settings with the key from the variable the contract names (on Ray Serve).
        When the contract turns auth on, a missing or empty key is an error: the replica
        fails its start with this reason instead of serving everyone."""
        if api_key_env is None:
            return self
        raw = os.environ.get(api_key_env)
        if raw is None:
            raise AuthConfigError(f"auth is on, but {api_key_env} is not set in the replica")
        return self.model_copy(update={"api_key": _usable_key(raw, api_key_env)})

    def with_limits(self, limits: LimitsArgs | None) -> RuntimeSettings:
        """These settings with the contract's backpressure limits, where the operator set them
        (on Ray Serve they must agree with the Serve deployment's own limits)."""
        if limits is None:
            return self
        update: dict[str, float] = {
            "max_inflight": limits.max_inflight,
            "retry_after_s": limits.retry_after_s,
        }
        if limits.request_timeout_s is not None:
            update["request_timeout_s"] = limits.request_timeout_s
        return self.model_copy(update=update)
