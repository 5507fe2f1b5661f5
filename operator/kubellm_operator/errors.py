"""The operator's error vocabulary for API failures (translated once, at the edge)."""

from __future__ import annotations

API_ERROR = "ApiError"
"""The reason of an API failure that retrying may fix (no answer, a conflict, a 5xx)."""
# Reasons an API failure shows under on the object, by HTTP status.
_REASONS = {
    400: "ChildRejected",
    403: "Forbidden",
    404: "KubeRayMissing",
    422: "ChildRejected",
}
LASTING = frozenset(_REASONS.values())
"""Failures that last until somebody acts (RBAC, installing KubeRay, a schema mismatch): still
retried with backoff, but reported as Stalled rather than in progress."""
REASONS = (API_ERROR, *sorted(LASTING))
"""Every reason a KubeError can carry (the metrics start each at zero)."""


class KubeError(Exception):
    """An API call failed: the HTTP status (0: no answer) and the API server's message."""

    def __init__(self, status: int, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"Kubernetes API error {status}: {message}")
        self.status = status
        self.message = message
        self.reason = reason or _REASONS.get(status, API_ERROR)
