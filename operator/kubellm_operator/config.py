"""Operator configuration: one typed settings object, loaded once at start-up and injected."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GPU_TOLERATION: dict[str, Any] = {
    "key": "nvidia.com/gpu",
    "operator": "Exists",
    "effect": "NoSchedule",
}


class OperatorConfig(BaseSettings):
    """Settings from KUBELLM_* environment variables (the Helm chart sets them)."""

    model_config = SettingsConfigDict(
        env_prefix="KUBELLM_", frozen=True, extra="forbid", use_attribute_docstrings=True
    )

    runtime_image: str = "ghcr.io/kubellm/kubellm-runtime:0.1.0"
    """Image of the Ray pods when an object names none."""
    ray_version: str = "2.60.0"
    """Ray version inside the runtime image (RayService/RayJob rayVersion)."""
    node_pool_label: str = "kubellm.io/node-pool"
    """Node label that names a node pool (e.g. cloud.google.com/gke-nodepool on GKE)."""
    gpu_product_label: str = "nvidia.com/gpu.product"
    """Node label with the GPU product (NVIDIA GPU feature discovery)."""
    gpu_resource: str = "nvidia.com/gpu"
    """Extended resource name of a GPU."""
    default_gpu_tolerations: tuple[dict[str, Any], ...] = (GPU_TOLERATION,)
    """Tolerations every GPU worker gets (the NVIDIA GPU taint by default)."""
    head_cpu: str = "2"
    """CPU of the Ray head pod (it runs no model replicas)."""
    head_memory: str = "8Gi"
    """Memory of the Ray head pod."""
    shm_size: str = "16Gi"
    """Size of the /dev/shm memory volume of GPU workers (NCCL, vLLM)."""
    defaults_rollout: Literal["pinned", "paced"] = "pinned"
    """pinned: a deployment keeps the runtime image, Ray version, head resources and shm size
    it was built with (an operator upgrade changes no RayService) until its annotation
    kubellm.io/adopt-defaults asks for the operator's current ones; paced: every deployment
    moves to them, defaults_rollout_max_in_flight at a time."""
    defaults_rollout_max_in_flight: int = Field(default=1, ge=1)
    """Deployments moving to new defaults at once (each a NewCluster upgrade: twice its GPUs
    for a while); the next starts only when one of them is Ready on the new defaults."""
    defaults_recheck_s: float = Field(default=10.0, gt=0)
    """A deployment waiting for a rollout slot looks for a free one this often."""
    cluster_domain: str = "cluster.local"
    """DNS domain of the cluster, for the endpoint URL."""
    watch_namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty watches all."""
    metrics_host: str = "127.0.0.1"
    """Address of the Prometheus metrics listener (0.0.0.0 in the cluster)."""
    metrics_port: int = Field(default=8080, ge=1, le=65535)
    """Port of the Prometheus metrics listener."""
    max_replicas: int = Field(default=100, ge=1)
    """Upper bound of model replicas without autoscaling (the Ray autoscaler's worker ceiling)."""
    health_check_period_s: int = Field(default=10, ge=1)
    """Ray Serve health-check period of model replicas."""
    health_check_timeout_s: int = Field(default=60, ge=1)
    """Ray Serve health-check timeout (replicas report unhealthy until the model is loaded)."""
    ray_dashboard_port: int = Field(default=8265, ge=1, le=65535)
    """Port of the Ray head's dashboard, asked which config its Serve application runs."""
    ray_dashboard_proxy: str | None = None
    """HTTP proxy for those calls (the local test cluster's Ray bridge); unset: direct."""
    ray_dashboard_timeout_s: float = Field(default=3.0, gt=0)
    """Connect and read timeout of a dashboard call (no answer: Ready waits, then retries)."""
    claim_recheck_s: float = Field(default=15.0, gt=0)
    """While a deployment or job waits for a PersistentVolumeClaim it names to be created,
    look again this often (nothing is created until every claim exists)."""
    head_recheck_s: float = Field(default=2.0, gt=0)
    """While Ready waits on a Ray head to apply or run the current config, ask it this often
    (KubeRay polls its heads every 2 s too)."""
    child_settle_s: float = Field(default=0.2, ge=0)
    """A child's change is reconciled this long after it arrives, so a burst of KubeRay and
    pod events (they come in runs) costs one reconcile and one status write."""
    status_interval_s: float = Field(default=1.0, ge=0)
    """At most one status write per object in this time while it stays in progress: the
    steps of a rollout that come within it are written together. A change of Ready, Stalled
    or Reconciling, or of the observed generation, is written at once (0: no pacing)."""
    workers: int = Field(default=4, ge=1, le=64)
    """Reconciles run at once (each in a thread: the Kubernetes client blocks)."""
    retry_base_delay_s: float = Field(default=0.5, gt=0)
    """First retry of a failed reconcile; each further failure doubles it."""
    retry_max_delay_s: float = Field(default=60.0, gt=0)
    """Longest wait between retries (a forbidden write or a missing KubeRay is retried too)."""
    log_format: Literal["json", "plain"] = "json"
    """Log format of the operator."""
    model_cache: Literal["emptyDir", "hostPath"] = "emptyDir"
    """Where workers keep s3:// and gs:// downloads: per pod, or per node (downloaded once)."""
    model_cache_host_path: str = "/var/cache/kubellm/models"
    """The node directory used when model_cache is hostPath."""
    rayjob_submission_mode: Literal["K8sJobMode", "HTTPMode", "SidecarMode"] = "K8sJobMode"
    """How KubeRay submits a FineTuneJob's training run: a submitter Job (K8sJobMode), from
    the KubeRay operator itself (HTTPMode), or a sidecar of the Ray head (SidecarMode)."""
    rayjob_pre_running_deadline_s: int | None = Field(default=1800, ge=1)
    """A training run whose workers are not running after this long fails with reason
    PreRunningDeadlineExceeded (no GPUs to be had) instead of waiting forever; unset: wait."""
    rayjob_deletion_rules: bool = False
    """Clean up finished training clusters with KubeRay's deletionRules (needs KubeRay's
    RayJobDeletionPolicy feature gate) instead of shutdownAfterJobFinishes and its TTL."""
    train_status_interval_s: float = Field(default=10.0, ge=0)
    """The trainer writes progress to a FineTuneJob's status at most this often."""
    peering_name: str | None = None
    """Kopf peering object shared by the operator's replicas: the one with the highest
    priority reconciles, the others stand by (unset: standalone, a single replica)."""
    peering_priority: int | None = Field(default=None, ge=1)
    """This replica's priority; unset: derived from its pod name, so replicas of one
    Deployment differ (equal priorities would make every replica pause)."""
    peering_lifetime_s: int = Field(default=30, ge=10, le=600)
    """How long a replica counts as alive after its last keep-alive in the peering object: a
    standby takes over within about twice this after the active replica dies."""
    health_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of Kopf's liveness endpoint (/healthz) for the pod's probes; unset: none."""
    health_host: str = "0.0.0.0"  # noqa: S104 - a pod's probes reach it on the pod's address
    """Address of the liveness endpoint."""


@cache
def load_config() -> OperatorConfig:
    """The configuration, read from the environment once per process."""
    return OperatorConfig()
