"""`python -m kubellm_operator [--standalone]`: run the operator with its configuration."""

from __future__ import annotations

import sys

import kopf

from kubellm_operator import handlers  # noqa: F401 - registers the handlers with Kopf
from kubellm_operator.config import load_config


def main(argv: list[str]) -> None:
    config = load_config()
    kopf.configure(
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.PLAIN,
        log_refkey="object",
    )
    kopf.run(
        # --standalone: no peering (tests, single replica); the chart runs peered replicas.
        standalone="--standalone" in argv,
        clusterwide=not config.watch_namespaces,
        namespaces=list(config.watch_namespaces),
    )


if __name__ == "__main__":
    main(sys.argv)
