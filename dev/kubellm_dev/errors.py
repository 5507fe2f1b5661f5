"""The harness's error vocabulary: every failure names the component and where its log is."""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """Base class: a problem a developer can act on, printed without a traceback by the CLI."""


class ComponentError(HarnessError):
    """A component failed to build, start or become ready."""

    def __init__(self, component: str, problem: str, log: Path | None = None) -> None:
        self.component = component
        self.log = log
        where = f" (log: {log})" if log else ""
        super().__init__(f"{component}: {problem}{where}")


class PortInUseError(ComponentError):
    """A listener the cluster needs is already taken on 127.0.0.1."""

    def __init__(self, component: str, port: int) -> None:
        super().__init__(
            component,
            f"port 127.0.0.1:{port} is already in use; stop whatever holds it "
            "or bring the existing cluster down with `kubellm-dev cluster down`",
        )
        self.port = port


class NetworkNamespaceError(HarnessError):
    """The cluster must run in a loopback-only network namespace and does not."""
