"""Where GPU workers run, the same for every kind: the node pool and GPU product as node
selectors, the operator's default GPU tolerations merged with the object's, its affinity
and priority class."""

from __future__ import annotations

from typing import Any

from kubellm_operator.api.common import Placement, Toleration
from kubellm_operator.config import OperatorConfig


def node_selector(
    placement: Placement, gpu_type: str | None, config: OperatorConfig
) -> dict[str, str]:
    selector = dict(placement.node_selector)
    if placement.node_pool:
        selector[config.node_pool_label] = placement.node_pool
    if gpu_type:
        selector[config.gpu_product_label] = gpu_type
    return dict(sorted(selector.items()))


def tolerations(
    placement: Placement, config: OperatorConfig, *, gpus: bool
) -> list[dict[str, Any]]:
    """GPU pods tolerate the default GPU taints and the object's own (each once, in a stable
    order); CPU pods only the object's."""
    if not gpus:
        return [t.to_wire() for t in placement.tolerations]
    defaults = [Toleration.model_validate(t) for t in config.default_gpu_tolerations]
    merged = {t.model_dump_json(): t for t in [*defaults, *placement.tolerations]}
    return [merged[key].to_wire() for key in sorted(merged)]


def worker_pod_fields(
    placement: Placement, gpu_type: str | None, config: OperatorConfig, *, gpus: bool
) -> dict[str, Any]:
    """The pod spec fields that place a worker (only those that are set)."""
    fields: dict[str, Any] = {}
    if selector := node_selector(placement, gpu_type, config):
        fields["nodeSelector"] = selector
    if toleration_list := tolerations(placement, config, gpus=gpus):
        fields["tolerations"] = toleration_list
    if placement.affinity:
        fields["affinity"] = placement.affinity
    if placement.priority_class_name:
        fields["priorityClassName"] = placement.priority_class_name
    return fields
