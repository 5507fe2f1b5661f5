"""The Ray bridge answers KubeRay's proxied calls: scripted, or forwarded to a real Ray head."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from kubellm_dev.bridge import BridgeServer
from kubellm_dev.bridge_client import BridgeClient
from kubellm_dev.bridge_state import BridgeState, parse_target
from kubellm_dev.pod_lifetime import JobReaper
from kubellm_operator.edge.rayhead import RayHead
from kubellm_operator.status.rayhead import ServedModels

HEAD = "http://rs-abc-head-svc.team-a.svc.cluster.local:8265"


@pytest.fixture
def bridge() -> Iterator[tuple[BridgeServer, BridgeClient]]:
    server = BridgeServer(0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, BridgeClient(server.server_address[1])
    server.shutdown()
    server.server_close()


def proxied(server: BridgeServer, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """Send a request the way Go's HTTP client sends it through an HTTP proxy (absolute form)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, url, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(raw)
    except json.JSONDecodeError:
        return resp.status, raw.decode()


def test_head_service_hosts_name_cluster_and_namespace() -> None:
    target = parse_target("rs-abc-head-svc.team-a.svc.cluster.local")
    assert (target.cluster, target.namespace) == ("rs-abc", "team-a")
    assert parse_target("10.244.0.7").namespace is None


def test_scripted_serve_applications_run_after_kuberay_puts_them(bridge: Any) -> None:
    server, _ = bridge
    config = {
        "applications": [{"name": "llm", "import_path": "x:y", "deployments": [{"name": "D"}]}]
    }
    assert proxied(server, "GET", f"{HEAD}/api/serve/applications/?api_type=declarative")[1] == {
        "applications": {},
        "deploy_mode": "MULTI_APP",
    }
    assert proxied(server, "PUT", f"{HEAD}/api/serve/applications/", config)[0] == 200

    _, details = proxied(server, "GET", f"{HEAD}/api/serve/applications/?api_type=declarative")
    assert details["applications"]["llm"]["status"] == "RUNNING"
    assert details["applications"]["llm"]["deployments"]["D"]["status"] == "HEALTHY"


def test_a_test_can_script_deploy_failed_for_one_namespace_only(bridge: Any) -> None:
    server, control = bridge
    config = {"applications": [{"name": "llm", "import_path": "x:y"}]}
    other = "http://rs-abc-head-svc.team-b.svc.cluster.local:8265"
    proxied(server, "PUT", f"{HEAD}/api/serve/applications/", config)
    proxied(server, "PUT", f"{other}/api/serve/applications/", config)

    control.set_app_status("team-a", "llm", "DEPLOY_FAILED", "boom")

    _, mine = proxied(server, "GET", f"{HEAD}/api/serve/applications/")
    _, theirs = proxied(server, "GET", f"{other}/api/serve/applications/")
    assert (mine["applications"]["llm"]["status"], mine["applications"]["llm"]["message"]) == (
        "DEPLOY_FAILED",
        "boom",
    )
    assert theirs["applications"]["llm"]["status"] == "RUNNING"


def test_unknown_jobs_are_404_so_http_mode_submits_then_they_succeed(bridge: Any) -> None:
    server, control = bridge
    assert proxied(server, "GET", f"{HEAD}/api/jobs/train-x1")[0] == 404

    status, reply = proxied(
        server,
        "POST",
        f"{HEAD}/api/jobs/",
        {"submission_id": "train-x1", "entrypoint": "python t.py"},
    )
    assert (status, reply["submission_id"]) == (200, "train-x1")
    _, info = proxied(server, "GET", f"{HEAD}/api/jobs/train-x1")
    assert (info["status"], info["entrypoint"]) == ("SUCCEEDED", "python t.py")
    assert control.state()["submitted"][0]["jobId"] == "train-x1"


def test_job_status_is_scripted_by_id_prefix(bridge: Any) -> None:
    server, control = bridge
    control.set_job_status("team-a", "train", "FAILED", "out of memory")
    proxied(server, "POST", f"{HEAD}/api/jobs/", {"submission_id": "train-x2", "entrypoint": "e"})
    _, info = proxied(server, "GET", f"{HEAD}/api/jobs/train-x2")
    assert (info["status"], info["message"]) == ("FAILED", "out of memory")
    assert info["end_time"] is not None


class _FakeRayHead(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        return

    def do_GET(self) -> None:
        body = json.dumps({"seen": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_real_mode_forwards_to_the_real_head_for_that_namespace_only(bridge: Any) -> None:
    server, control = bridge
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _FakeRayHead)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{upstream.server_address[1]}"
        control.set_real(dashboard=base, serve=base)
        control.set_mode("team-a", "real")

        assert proxied(server, "GET", f"{HEAD}/api/jobs/j1?x=1")[1] == {"seen": "/api/jobs/j1?x=1"}
        # Pod health checks carry no namespace: forwarded once any namespace uses real Ray.
        assert proxied(server, "GET", "http://10.244.0.9:8000/-/healthz")[1] == {
            "seen": "/-/healthz"
        }
        other = "http://rs-head-svc.team-b.svc.cluster.local:8265"
        assert proxied(server, "GET", f"{other}/api/jobs/j1")[0] == 404  # still scripted
    finally:
        upstream.shutdown()
        upstream.server_close()


def test_real_mode_without_a_head_answers_502_not_a_hang(bridge: Any) -> None:
    server, control = bridge
    control.set_mode("team-a", "real")
    status, body = proxied(server, "GET", f"{HEAD}/api/serve/applications/")
    assert status == 502
    assert "no real Ray head" in body


def test_every_proxied_call_is_logged_for_tests_to_inspect(bridge: Any) -> None:
    server, control = bridge
    proxied(server, "GET", f"{HEAD}/api/serve/applications/")
    (entry,) = control.state()["requests"]
    assert (entry["method"], entry["path"]) == ("GET", "/api/serve/applications/")


class _FakeJobHead(BaseHTTPRequestHandler):
    """A Ray dashboard with one job API: submissions run until stopped."""

    jobs: ClassVar[dict[str, str]] = {}

    def log_message(self, *_: Any) -> None:
        return

    def _answer(self, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/api/jobs/":
            job = f"raysubmit_{len(self.jobs)}"
            self.jobs[job] = "RUNNING"
            self._answer({"job_id": job, "submission_id": job})
        else:  # /api/jobs/<id>/stop
            self.jobs[self.path.split("/")[3]] = "STOPPED"
            self._answer({"stopped": True})

    def do_GET(self) -> None:
        self._answer({"status": self.jobs[self.path.split("/")[3]]})


def test_a_forwarded_job_is_stopped_once_its_ray_cluster_is_deleted() -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _FakeJobHead)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    clusters = {("team-a", "rs-abc"), ("team-a", "other")}
    state = BridgeState(default_mode="real", real_dashboard=base, real_serve=base)
    reaper = JobReaper(lambda ns, name: (ns, name) in clusters, lambda: state.real_dashboard)
    server = BridgeServer(0, state=state, reaper=reaper)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mine = proxied(server, "POST", f"{HEAD}/api/jobs/", {"entrypoint": "train"})[1]
        other_head = "http://other-head-svc.team-a.svc.cluster.local:8265"
        theirs = proxied(server, "POST", f"{other_head}/api/jobs/", {"entrypoint": "x"})[1]
        assert reaper.sweep() == []  # both clusters exist: both run on
        clusters.discard(("team-a", "rs-abc"))  # KubeRay deleted it (a suspend, the TTL)
        assert reaper.sweep() == [mine["submission_id"]]
        assert _FakeJobHead.jobs == {mine["submission_id"]: "STOPPED", theirs["job_id"]: "RUNNING"}
        _FakeJobHead.jobs[theirs["job_id"]] = "SUCCEEDED"
        assert reaper.sweep() == []
        assert not reaper.tracked  # ended or stopped: nothing left to watch
    finally:
        for each in (server, upstream):
            each.shutdown()
            each.server_close()


class _FakeServeProxy(BaseHTTPRequestHandler):
    """A Serve proxy whose /v1/models names what it was sent (path and API key)."""

    def log_message(self, *_: Any) -> None:
        return

    def do_GET(self) -> None:
        seen = [self.path, self.headers.get("Authorization") or "no key"]
        body = json.dumps({"data": [{"id": s} for s in seen]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _probe(server: BridgeServer) -> RayHead:
    return RayHead(proxy=f"http://127.0.0.1:{server.server_address[1]}", timeout_s=5)


def test_the_operator_probe_lists_the_model_and_adapters_kuberay_put_scripted(bridge: Any) -> None:
    server, _ = bridge
    assert _probe(server).served_models("team-a", "rs", None) == ServedModels(
        error="rs-serve-svc answered HTTP 503"
    )
    model = {
        "name": "LLMServer",
        "user_config": {"adapters": [{"name": "sql", "uri": "s3://b/sql"}]},
    }
    app = {"name": "llm", "args": {"model": {"served_name": "m"}}, "deployments": [model]}
    proxied(server, "PUT", f"{HEAD}/api/serve/applications/", {"applications": [app]})
    listed = _probe(server).served_models("team-a", "rs", None)
    assert listed == ServedModels(models=frozenset({"m", "sql"}))
    assert _probe(server).served_models("team-b", "rs", None).error is not None  # other namespace


def test_real_mode_sends_serve_port_calls_to_the_serve_proxy_with_the_key(bridge: Any) -> None:
    server, control = bridge
    dashboard = ThreadingHTTPServer(("127.0.0.1", 0), _FakeRayHead)
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _FakeServeProxy)
    for upstream in (dashboard, proxy):
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        control.set_real(
            dashboard=f"http://127.0.0.1:{dashboard.server_address[1]}",
            serve=f"http://127.0.0.1:{proxy.server_address[1]}",
        )
        control.set_mode("team-a", "real")
        listed = _probe(server).served_models("team-a", "rs", "sk-1")
        assert listed.models == {"/v1/models", "Bearer sk-1"}
        details = _probe(server).serve_details("team-a", "rs-abc")
        assert details == {"seen": "/api/serve/applications/"}
    finally:
        for upstream in (dashboard, proxy):
            upstream.shutdown()
            upstream.server_close()
