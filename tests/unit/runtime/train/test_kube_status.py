"""Status writes as the API server receives them: a merge patch of the job's status
subresource, carrying its uid, with the service account's current token; refusals raise."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kubellm_runtime.contract import StatusTarget
from kubellm_runtime.train.kube_status import ApiServer, KubeStatusSink, StatusWriteError

TARGET = StatusTarget(namespace="team", name="sql", uid="1234-abcd", interval_s=5)


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    answer = 200

    def do_PATCH(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.seen.append(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "auth": self.headers["Authorization"],
                "body": json.loads(body),
            }
        )
        self.send_response(self.answer)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None: ...


@pytest.fixture
def api() -> Iterator[str]:
    Recorder.seen, Recorder.answer = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_write_is_a_merge_patch_of_this_jobs_status_with_its_uid(
    api: str, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    sink = KubeStatusSink(TARGET, ApiServer(api, token, None))
    sink.write({"progress": {"step": 3}})
    token.write_text("rotated")  # a projected token is re-read on every write
    sink.write({"adapterUri": "pvc://out/sql"})
    first, second = Recorder.seen
    assert first["path"] == "/apis/kubellm.io/v1alpha1/namespaces/team/finetunejobs/sql/status"
    assert first["type"] == "application/merge-patch+json"
    assert first["body"] == {"metadata": {"uid": "1234-abcd"}, "status": {"progress": {"step": 3}}}
    assert (first["auth"], second["auth"]) == ("Bearer first", "Bearer rotated")


def test_a_refused_write_raises_with_the_status_code(api: str, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t")
    Recorder.answer = 403
    sink = KubeStatusSink(TARGET, ApiServer(api, tmp_path / "token", None))
    with pytest.raises(StatusWriteError, match="403"):
        sink.write({"progress": {"step": 1}})


def test_the_api_server_comes_from_the_pod_or_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBELLM_TRAIN_API_URL", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    pod = ApiServer.from_environment()
    assert pod.url == "https://10.96.0.1:443"
    assert str(pod.token_file) == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    monkeypatch.setenv("KUBELLM_TRAIN_API_URL", "https://127.0.0.1:6443/")
    monkeypatch.setenv("KUBELLM_TRAIN_API_TOKEN_FILE", "/tmp/token")
    harness = ApiServer.from_environment()
    assert (harness.url, str(harness.token_file)) == ("https://127.0.0.1:6443", "/tmp/token")
    monkeypatch.delenv("KUBELLM_TRAIN_API_URL")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(StatusWriteError, match="not in a pod"):
        ApiServer.from_environment()
