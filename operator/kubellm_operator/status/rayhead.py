"""What a Ray head says it runs, what the Serve endpoint lists, and the head's confirmation
of Ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from kubellm_operator.status.conditions import Verdict
from kubellm_operator.status.rayservice import RayServiceView
from kubellm_operator.status.reasons import SERVE_REASONS
from kubellm_operator.status.view import View
from kubellm_runtime.contract import SERVE_APP, SERVE_DEPLOYMENT


class DeployedApp(View):
    """What a Ray head says about the kubellm application: status and the config it applied."""

    status: str = ""
    args: dict[str, Any] | None = None
    user_config: dict[str, Any] | None = None
    """The model deployment's user_config as applied (the adapters)."""

    @classmethod
    def parse(cls, details: dict[str, Any] | None) -> Self | None:
        app = ((details or {}).get("applications") or {}).get(SERVE_APP)
        if not isinstance(app, dict):
            return None
        config = app.get("deployed_app_config") or {}
        model = next(
            (
                d
                for d in config.get("deployments") or ()
                if isinstance(d, dict) and d.get("name") == SERVE_DEPLOYMENT
            ),
            {},
        )
        return cls(
            status=str(app.get("status") or ""),
            args=config.get("args"),
            user_config=model.get("user_config"),
        )


class ServedModels(View):
    """What the Serve endpoint's ``/v1/models`` lists: the model and the adapters a serving
    replica has really loaded (the operator's probe; ``error`` when it got no list)."""

    models: frozenset[str] = frozenset()
    error: str | None = None

    @classmethod
    def parse(cls, listing: Any) -> Self:
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            return cls(error="/v1/models answered without a model list")
        ids = (card.get("id") for card in data if isinstance(card, dict))
        return cls(models=frozenset(str(i) for i in ids if i))


def confirmed_verdict(
    rs: RayServiceView,
    deployed: DeployedApp | None,
    expected_args: Mapping[str, Any] | None,
    expected_user_config: Mapping[str, Any] | None = None,
) -> Verdict:
    """The head's own answer: has it applied the current config, and does it run it?"""
    name = rs.active.ray_cluster_name if rs.active else ""
    if deployed is None:
        return Verdict(
            "False",
            "ConfirmingConfig",
            f"cannot confirm the config Ray cluster {name} runs: its dashboard did not answer",
        )
    if deployed.args != expected_args or deployed.user_config != expected_user_config:
        return Verdict(
            "False", "Deploying", f"Ray cluster {name} has not applied the current config yet"
        )
    if deployed.status != "RUNNING":
        reason = SERVE_REASONS.get(deployed.status, "NotRunning")
        return Verdict("False", reason, f"the current config is {deployed.status} on {name}")
    return Verdict("True", "Running", f"model server runs the current config on {name}")
