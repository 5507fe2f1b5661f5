"""The sink a run's progress goes to: its FineTuneJob's status when it has one, else the log."""

from __future__ import annotations

from kubellm_runtime.contract import StatusTarget
from kubellm_runtime.train.kube_status import ApiServer, KubeStatusSink
from kubellm_runtime.train.progress import LogSink, Sink


def sink_for(target: StatusTarget | None) -> Sink:
    if target is None:
        return LogSink()
    return KubeStatusSink(target, ApiServer.from_environment())
