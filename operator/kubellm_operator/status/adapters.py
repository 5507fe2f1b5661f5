"""AdaptersReady: whether every requested adapter is served (pure; status/llmdeployment.py
stamps it). An adapter is Loaded only once the application that lists it runs the current
config and a serving replica's /v1/models names it."""

from __future__ import annotations

from kubellm_operator.api.llmdeployment import AdapterStatus
from kubellm_operator.status.conditions import Verdict
from kubellm_operator.status.rayhead import ServedModels


def _served_state(a: AdapterStatus, served: bool, listing: ServedModels | None) -> AdapterStatus:
    """Loaded only when the application that lists the adapter runs the current config and
    the Serve endpoint's /v1/models names it: never "loaded" on Ray Serve's word alone."""
    if not (served and a.state == "Pending" and a.uri):
        return a
    if listing is None:
        message = "loads with the model server; confirming through /v1/models"
    elif listing.error is not None:
        message = f"cannot confirm it is served: {listing.error}"
    elif a.name not in listing.models:
        message = "not listed by the serving replica's /v1/models yet"
    else:
        return a.model_copy(update={"state": "Loaded", "message": ""})
    return a.model_copy(update={"message": message})


def unlisted(adapters: tuple[AdapterStatus, ...], listing: ServedModels | None) -> bool:
    """An adapter waits on the probe alone (nothing in Kubernetes says when it is over)."""
    return any(
        a.state == "Pending" and a.uri and (listing is None or a.name not in listing.models)
        for a in adapters
    )


def adapters_verdict(
    adapters: tuple[AdapterStatus, ...], served: bool, listing: ServedModels | None = None
) -> tuple[Verdict, list[AdapterStatus]]:
    """Adapters with a source are served once the application that lists them runs the
    current config and a serving replica lists them. Those still waiting for a FineTuneJob
    are not."""
    states = [_served_state(a, served, listing) for a in adapters]
    failed = [a for a in states if a.state == "Failed"]
    waiting = [a for a in states if a.state == "Pending"]
    if failed:
        text = "; ".join(f"{a.name}: {a.message}" for a in failed)
        return Verdict("False", "AdapterUnavailable", text), states
    if not states:
        return Verdict("True", "NoAdapters", "no LoRA adapters requested"), states
    if not waiting:
        return Verdict("True", "Loaded", "all adapters are served"), states
    text = "; ".join(f"{a.name}: {a.message or 'loads with the model server'}" for a in waiting)
    return Verdict("False", "AdaptersPending", text), states
