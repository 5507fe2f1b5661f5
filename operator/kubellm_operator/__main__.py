"""`python -m kubellm_operator [--standalone]`: run the operator with its configuration.

The Helm chart, the plain manifests and the operator image all run exactly this command; what
differs is configuration (KUBELLM_* variables): the watched namespaces, the peering of several
replicas and the liveness endpoint.
"""

from __future__ import annotations

import hashlib
import socket
import sys

import kopf

from kubellm_operator import handlers  # noqa: F401 - registers the handlers with Kopf
from kubellm_operator.config import OperatorConfig, load_config
from kubellm_operator.memory import limit_malloc_arenas

MAX_PRIORITY = 1_000_000


def priority(config: OperatorConfig, pod: str) -> int:
    """This replica's peering priority: configured, or derived from its pod name (distinct per
    replica; Kopf pauses every replica that shares the highest priority)."""
    if config.peering_priority is not None:
        return config.peering_priority
    return 1 + int(hashlib.sha256(pod.encode()).hexdigest(), 16) % MAX_PRIORITY


def main(argv: list[str]) -> None:
    limit_malloc_arenas()  # before Kopf starts any thread
    config = load_config()
    kopf.configure(
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.PLAIN,
        log_refkey="object",
    )
    standalone = "--standalone" in argv or config.peering_name is None
    liveness = (
        f"http://{config.health_host}:{config.health_port}/healthz" if config.health_port else None
    )
    kopf.run(
        standalone=standalone,
        peering_name=None if standalone else config.peering_name,
        priority=priority(config, socket.gethostname()),
        liveness_endpoint=liveness,
        clusterwide=not config.watch_namespaces,
        namespaces=list(config.watch_namespaces),
    )


if __name__ == "__main__":
    main(sys.argv)
