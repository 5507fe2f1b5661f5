"""The operator's error vocabulary for API failures (translated once, at the edge)."""

from __future__ import annotations

CONFLICT = 409
TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500

# Reasons an API failure shows under on the object, by HTTP status.
_REASONS = {
    400: "ChildRejected",
    403: "Forbidden",
    404: "KubeRayMissing",
    422: "ChildRejected",
}
# Failures that last until somebody acts (RBAC, installing KubeRay, a schema mismatch):
# still retried with backoff, but reported as Stalled rather than in progress.
_LASTING = frozenset(_REASONS)
REASONS = ("ApiError", *sorted(set(_REASONS.values())))
"""Every reason a KubeError can carry (the metrics start each at zero)."""


class KubeError(Exception):
    """An API call failed: the HTTP status (0: no answer) and the API server's message."""

    def __init__(self, status: int, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"Kubernetes API error {status}: {message}")
        self.status = status
        self.message = message
        self.reason = reason or _REASONS.get(status, "ApiError")

    @property
    def lasting(self) -> bool:
        """Retrying soon will not help: somebody has to change the cluster first."""
        return self.status in _LASTING

    @property
    def retryable(self) -> bool:
        return self.status in {CONFLICT, TOO_MANY_REQUESTS, 0} or self.status >= SERVER_ERROR
