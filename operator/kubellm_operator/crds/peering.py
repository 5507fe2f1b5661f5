"""The CRDs of Kopf's peering objects (kopf.dev/v1), shipped with kubellm's own.

Several operator replicas agree through one peering object which of them reconciles (the
highest priority; the others stand by). Kopf reads and patches the object; it does not
create its CRDs, so kubellm ships them: ``ClusterKopfPeering`` for an operator that watches
every namespace, ``KopfPeering`` (one per watched namespace) otherwise.
"""

from __future__ import annotations

from typing import Any

from kubellm_operator.crds import yamlio

GROUP = "kopf.dev"


def _definition(kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": scope,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (
                                f"{kind}: the operator replicas that share it and their "
                                "priorities (written by Kopf under status)."
                            ),
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                    "additionalPrinterColumns": [
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        }
                    ],
                }
            ],
        },
    }


def rendered() -> dict[str, str]:
    """File name -> content of the two peering CRDs."""
    return {
        f"{GROUP}_clusterkopfpeerings.yaml": yamlio.dump(
            _definition("ClusterKopfPeering", "clusterkopfpeerings", "Cluster")
        ),
        f"{GROUP}_kopfpeerings.yaml": yamlio.dump(
            _definition("KopfPeering", "kopfpeerings", "Namespaced")
        ),
    }
