"""Kubernetes Events on kubellm's objects, posted from a background thread (best effort,
bounded)."""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from typing import Any

from kubernetes import client

from kubellm_operator import names
from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.edge.calls import (
    REQUEST_TIMEOUT,
    NotFoundError,
    calling,
)
from kubellm_operator.errors import KubeError

logger = logging.getLogger(__name__)


def event_body(ref: ObjectRef, type_: str, reason: str, message: str) -> dict[str, Any]:
    """The Event about ``ref``: its involvedObject names the object's own kind and uid, so
    `kubectl describe` of that object lists it."""
    now = dt.datetime.now(dt.UTC)
    return {
        "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
        "involvedObject": ref.involved,
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": names.MANAGER},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventPoster:
    """Posts Events from one background thread, through a bounded queue: Events are best
    effort (a lost one loses no state), so a full queue drops the new Event with a log line."""

    def __init__(self, api: client.ApiClient, capacity: int = 1000) -> None:
        self._api = api
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=capacity)
        threading.Thread(target=self._run, name="kubellm-events", daemon=True).start()

    def post(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            logger.warning("event %s dropped: too many events waiting", event["reason"])

    def _run(self) -> None:
        core = client.CoreV1Api(self._api)
        while True:
            event = self._queue.get()
            namespace, reason = event["metadata"]["namespace"], event["reason"]
            try:
                with calling("post event", f"post event {reason}"):
                    core.create_namespaced_event(namespace, event, _request_timeout=REQUEST_TIMEOUT)
            except (KubeError, NotFoundError) as exc:
                logger.warning("event not posted: %s", exc)
