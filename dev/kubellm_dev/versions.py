"""Pinned versions of every component of the local test cluster, in one place."""

from __future__ import annotations

from typing import Final

# Kubernetes control plane, built from k8s.io/kubernetes through dev/controlplane/go.mod.
# The go.mod pins the same version; tests/unit/test_layout.py keeps the two in step.
KUBERNETES: Final = "v1.36.3"

# etcd as required by k8s.io/kubernetes v1.36.3 itself (its go.mod lists server/v3 v3.6.8).
ETCD: Final = "v3.6.8"

# kwok fakes kubelets; v0.8.0 is built on k8s.io/* v0.36.
KWOK: Final = "v0.8.0"

# KubeRay's ray-operator. The design pins v1.7.0, but the Go module proxy reachable from these
# machines refuses that version ("403 This module version is not available", also for its
# pseudo-versions); v1.6.2 is the newest it serves. The cluster installs the CRDs of this same
# version, read from the downloaded module (config/crd/bases), so controller and schema agree.
KUBERAY: Final = "v1.6.2"
KUBERAY_MODULE: Final = "github.com/ray-project/kuberay/ray-operator"

# The Helm CLI for the chart tests, built from helm.sh/helm/v4 through dev/helm/go.mod (its
# tool line); tests/unit/test_layout.py keeps the two in step.
HELM: Final = "v4.3.2"

GO_MIN: Final = (1, 26)
