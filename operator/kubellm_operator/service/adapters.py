"""The adapters a deployment asks for: where each one is, and its state until it is served.

Adapters come from the spec (a URI, or a FineTuneJob's output) and from FineTuneJobs that
name the deployment in deployTo; one trained on another model, or whose name is taken, is
refused with the reason.
"""

from __future__ import annotations

from kubellm_operator.api.llmdeployment import AdapterStatus, LLMDeploymentSpec
from kubellm_operator.builders.serve_config import ResolvedAdapter
from kubellm_operator.service.handoffs import HandOff
from kubellm_operator.service.ports import LLMDeploymentCluster


def _other_base(
    spec: LLMDeploymentSpec, job: str, base_uri: str, base_revision: str | None
) -> str | None:
    """Why a job's adapter cannot be served here (trained on another model), or None."""
    if (base_uri, base_revision) == (spec.model.uri, spec.model.revision):
        return None
    return (
        f"FineTuneJob {job} trained on {base_uri}, but this deployment serves "
        f"{spec.model.uri}: not loaded"
    )


def _handed_off(
    spec: LLMDeploymentSpec, handoffs: tuple[HandOff, ...], taken: set[str]
) -> tuple[list[ResolvedAdapter], list[AdapterStatus]]:
    """FineTuneJobs that name this deployment in deployTo: served once Succeeded, if they
    were trained on its model and their adapter's name is free."""
    resolved: list[ResolvedAdapter] = []
    states: list[AdapterStatus] = []
    for h in handoffs:
        if (message := _other_base(spec, h.job, h.base_uri, h.base_revision)) is not None:
            states.append(AdapterStatus(name=h.adapter_name, state="Failed", message=message))
        elif h.adapter_name in taken:
            message = (
                f"FineTuneJob {h.job}: the name {h.adapter_name} is taken "
                "(give a new version a new output.adapterName)"
            )
            states.append(AdapterStatus(name=h.adapter_name, state="Failed", message=message))
        elif h.adapter_uri is None:
            message = f"waiting for FineTuneJob {h.job} (phase {h.phase or 'Pending'})"
            states.append(AdapterStatus(name=h.adapter_name, state="Pending", message=message))
        else:
            resolved.append(ResolvedAdapter(h.adapter_name, h.adapter_uri))
            states.append(AdapterStatus(name=h.adapter_name, state="Pending", uri=h.adapter_uri))
        taken.add(h.adapter_name)
    return resolved, states


def resolve_adapters(
    spec: LLMDeploymentSpec, namespace: str, cluster: LLMDeploymentCluster, name: str = ""
) -> tuple[tuple[ResolvedAdapter, ...], tuple[AdapterStatus, ...]]:
    """Adapters with a known location, and the state of each requested adapter (those the
    spec lists, then those FineTuneJobs hand off)."""
    resolved: list[ResolvedAdapter] = []
    states: list[AdapterStatus] = []
    for adapter in spec.adapters:
        if adapter.uri is not None:
            resolved.append(ResolvedAdapter(adapter.name, adapter.uri))
            states.append(AdapterStatus(name=adapter.name, state="Pending", uri=adapter.uri))
            continue
        job_name = adapter.from_fine_tune_job or ""
        job = cluster.get_finetunejob(namespace, job_name)
        job_status = (job or {}).get("status") or {}
        uri = job_status.get("adapterUri")
        base = ((job or {}).get("spec") or {}).get("baseModel") or {}
        refused = job and _other_base(
            spec, job_name, str(base.get("uri", "")), base.get("revision")
        )
        if refused:
            states.append(AdapterStatus(name=adapter.name, state="Failed", message=refused))
        elif job is None:
            states.append(
                AdapterStatus(
                    name=adapter.name, state="Pending", message=f"FineTuneJob {job_name} not found"
                )
            )
        elif job_status.get("phase") == "Failed":
            states.append(
                AdapterStatus(
                    name=adapter.name, state="Failed", message=f"FineTuneJob {job_name} failed"
                )
            )
        elif uri:
            resolved.append(ResolvedAdapter(adapter.name, uri))
            states.append(AdapterStatus(name=adapter.name, state="Pending", uri=uri))
        else:
            phase = job_status.get("phase") or "Pending"
            states.append(
                AdapterStatus(
                    name=adapter.name,
                    state="Pending",
                    message=f"waiting for FineTuneJob {job_name} (phase {phase})",
                )
            )
    taken = {a.name for a in spec.adapters} | {spec.model.default_served_name()}
    extra, extra_states = _handed_off(spec, cluster.list_handoffs(namespace, name), taken)
    return (*resolved, *extra), (*states, *extra_states)
