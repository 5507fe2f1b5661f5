"""The status vocabulary of both kinds in one place: condition types, and the reasons that mean
something to the operator (those that stop a rollout, end a job, or post a Warning).

Other reasons are CamelCase words chosen where a verdict is made (``status/<child>.py``,
``status/<kind>.py``); these are the ones other code decides on.
"""

from __future__ import annotations

from typing import Final

from kubellm_operator.errors import API_ERROR, LASTING

# Condition types. Ready, Reconciling and Stalled are what kstatus (kubectl wait, Argo CD,
# Flux) reads on an LLMDeployment; a FineTuneJob has one condition per phase it can end in.
READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
RAY_CLUSTER_READY: Final = "RayClusterReady"
SERVE_READY: Final = "ServeReady"
ADAPTERS_READY: Final = "AdaptersReady"
RUNNING: Final = "Running"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"
DEPLOYED: Final = "Deployed"

INVALID_SPEC: Final = "InvalidSpec"
CLAIM_NOT_FOUND: Final = "ClaimNotFound"

FAILURES: Final = frozenset(
    {INVALID_SPEC, "Unschedulable", "DeployFailed", "AdapterUnavailable", *LASTING}
)
"""Why Ready is False when only an action by somebody can move it on: Stalled, not
Reconciling (the operator keeps retrying all the same)."""
ALERTS: Final = FAILURES | {"Unhealthy", API_ERROR}
"""Ready reasons that tell of a failure: their Events are Warnings, and leaving one is written
at once."""

INPUT_FAULTS: Final = frozenset({"InvalidDataset", "ModelNotLoadable", "OutputNotWritable"})
"""The trainer's reasons for inputs at fault: the job is final at once, never retried."""
FINAL_PHASES: Final = frozenset({SUCCEEDED, FAILED})
"""A FineTuneJob in one of these phases stays there."""

SERVE_REASONS: Final = {
    "DEPLOY_FAILED": "DeployFailed",
    "UNHEALTHY": "Unhealthy",
    "DEPLOYING": "Deploying",
    "DELETING": "Deleting",
}
"""Ray Serve's application status → the reason ServeReady is False with."""
