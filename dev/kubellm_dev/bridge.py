"""The Ray bridge: KubeRay's HTTP proxy, answering its dashboard and Serve calls on loopback.

KubeRay runs out of cluster with HTTP_PROXY pointing here, so every plain-HTTP call it makes
to a Ray head (``http://<cluster>-head-svc.<ns>.svc.cluster.local:8265/api/...``) or a pod
(``http://<podIP>:8000/-/healthz``) arrives at this server in absolute form and never leaves
the machine; so does the operator's own probe of a Serve endpoint
(``http://<rayservice>-serve-svc.<ns>.svc.cluster.local:8000/v1/models``). Per namespace the
bridge is either

* scripted: it answers as a Ray dashboard would, with application and job statuses a test
  chooses through the control API (``/__bridge/...``), and as the runtime's ``/v1/models``
  would for the config KubeRay last put, or
* real: it forwards the call to a real Ray head started on loopback (dashboard calls to its
  dashboard, Serve-port calls to its Serve proxy), so Serve applications are really deployed
  and answer, and HTTPMode RayJobs really run.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubellm_dev.bridge_state import (
    SERVE_PORT,
    BridgeState,
    Mode,
    Target,
    parse_target,
    scripted_job,
    scripted_models,
    scripted_serve_details,
)
from kubellm_dev.pod_identity import PodIdentity
from kubellm_dev.pod_lifetime import JobReaper, raycluster_exists

__all__ = ["BridgeServer", "serve"]
_JOB_PATH = re.compile(r"^/api/jobs/(?P<id>[^/]+)(?P<rest>/.*)?$")
FORWARD_TIMEOUT = 30.0


class BridgeHandler(BaseHTTPRequestHandler):
    """Answers KubeRay's proxied calls and the bridge's own control API."""

    server: BridgeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # the request log in the state replaces per-line stderr noise

    # -- plumbing ---------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, code: int, obj: Any = None, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(obj if obj is not None else {}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if raw is None else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        body = self._body()
        if not split.scheme:  # origin form: a call to the bridge itself
            self._control(split.path, body)
            return
        target = parse_target(split.hostname or "")
        serve = split.port == SERVE_PORT or split.path.endswith("/-/healthz")
        state = self.server.state
        with state.lock:
            state.requests.append(
                {
                    "method": self.command,
                    "host": target.host,
                    "path": split.path,
                    "at": f"{time.time():.3f}",
                }
            )
            mode = state.mode_for(target)
        if mode == "real":
            self._forward(target, split.path, split.query, body, serve=serve)
        else:
            self._scripted(target, split.path, body)

    do_GET = do_PUT = do_POST = do_DELETE = _dispatch  # noqa: N815

    # -- scripted mode ----------------------------------------------------------------------
    def _scripted(self, target: Target, path: str, body: bytes) -> None:
        route = path.rstrip("/")
        if path.endswith("/-/healthz"):
            self._reply(200, raw=b"success")
        elif route == "/v1/models" and target.rayservice is not None:
            with self.server.state.lock:
                models = scripted_models(self.server.state, target)
            if models is None:
                self._reply(503, raw=b"bridge (scripted): no Serve application yet")
            else:
                self._reply(200, models)
        elif route == "/api/serve/applications":
            self._scripted_serve(target, body)
        elif route == "/api/jobs":
            self._scripted_jobs(target, body)
        elif (job := _JOB_PATH.match(path)) is not None:
            self._scripted_job_call(target, job["id"], job["rest"] or "")
        else:
            self._reply(404, raw=f"bridge (scripted): no answer for {self.command} {path}".encode())

    def _scripted_serve(self, target: Target, body: bytes) -> None:
        state = self.server.state
        with state.lock:
            if self.command == "GET":
                self._reply(200, scripted_serve_details(state, target))
                return
            if self.command == "PUT":
                state.serve_configs[target.host] = json.loads(body or b"{}")
            elif self.command == "DELETE":
                state.serve_configs.pop(target.host, None)
        self._reply(200)

    def _scripted_jobs(self, target: Target, body: bytes) -> None:
        state = self.server.state
        namespace = target.namespace or ""
        if self.command == "POST":
            request = json.loads(body or b"{}")
            job_id = request.get("submission_id") or f"raysubmit_{int(time.time() * 1000)}"
            with state.lock:
                state.submitted[(namespace, job_id)] = request
            self._reply(200, {"job_id": job_id, "submission_id": job_id})
            return
        with state.lock:
            infos = [
                scripted_job(state, target, jid) for (ns, jid) in state.submitted if ns == namespace
            ]
        self._reply(200, [i for i in infos if i])

    def _scripted_job_call(self, target: Target, job_id: str, rest: str) -> None:
        state = self.server.state
        with state.lock:
            info = scripted_job(state, target, job_id)
            if self.command == "DELETE":
                state.submitted.pop((target.namespace or "", job_id), None)
        if info is None:
            self._reply(404, raw=f"Job {job_id} does not exist".encode())
        elif rest == "/logs":
            self._reply(200, {"logs": ""})
        elif rest == "/stop":
            self._reply(200, {"stopped": True})
        else:
            self._reply(200, info if self.command == "GET" else {})

    # -- real mode --------------------------------------------------------------------------
    def _forward(self, target: Target, path: str, query: str, body: bytes, *, serve: bool) -> None:
        state = self.server.state
        identity = self.server.identity
        if (
            identity is not None
            and self.command == "POST"
            and path.rstrip("/") == "/api/jobs"
            and target.namespace
            and target.cluster
        ):
            try:  # what the kubelet would have given the head pod
                body = identity.submission(target.namespace, target.cluster, body)
            except Exception as exc:
                self._reply(500, raw=f"bridge (real): no pod identity: {exc}".encode())
                return
        base = state.real_serve if serve else state.real_dashboard
        if not base:
            self._reply(502, raw=b"bridge (real): no real Ray head configured")
            return
        upstream = urlsplit(base)
        conn = http.client.HTTPConnection(
            upstream.hostname or "127.0.0.1", upstream.port or 80, timeout=FORWARD_TIMEOUT
        )
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() in {"content-type", "accept", "x-ray-authorization", "authorization"}
        }
        try:
            conn.request(
                self.command,
                path + (f"?{query}" if query else ""),
                body=body or None,
                headers=headers,
            )
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            self._reply(502, raw=f"bridge (real): {base} unreachable: {exc}".encode())
            return
        finally:
            conn.close()
        self._track_submission(target, path, resp.status, data)
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _track_submission(self, target: Target, path: str, status: int, data: bytes) -> None:
        """A job submitted for a RayCluster dies with it (see pod_lifetime)."""
        reaper = self.server.reaper
        if reaper is None or self.command != "POST" or path.rstrip("/") != "/api/jobs":
            return
        if status != http.client.OK or not target.namespace or not target.cluster:
            return
        submission = json.loads(data or b"{}").get("submission_id")
        if submission:
            reaper.track(target.namespace, target.cluster, str(submission))

    # -- control API --------------------------------------------------------------------------
    def _control(self, path: str, body: bytes) -> None:
        state = self.server.state
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["__bridge"]:
            self._reply(404, raw=b"not a bridge path")
            return
        payload = json.loads(body or b"{}") if body else {}
        with state.lock:
            match (self.command, parts[1:]):
                case ("GET", ["state"]):
                    self._reply(200, state.snapshot())
                    return
                case ("PUT", ["real"]):
                    state.real_dashboard = payload.get("dashboard")
                    state.real_serve = payload.get("serve")
                case ("PUT", ["default-mode"]):
                    state.default_mode = _mode(payload)
                case ("PUT", ["namespaces", ns, "mode"]):
                    state.modes[ns] = _mode(payload)
                case ("PUT", ["namespaces", ns, "apps", app]):
                    state.apps.setdefault(ns, {})[app] = _status(payload)
                case ("PUT", ["namespaces", ns, "jobs", prefix]):
                    state.jobs.setdefault(ns, {})[prefix] = _status(payload)
                case ("DELETE", ["namespaces", ns]):
                    state.modes.pop(ns, None)
                    state.apps.pop(ns, None)
                    state.jobs.pop(ns, None)
                case _:
                    self._reply(404, raw=f"unknown bridge call {self.command} {path}".encode())
                    return
        self._reply(200, {"ok": True})


def _mode(payload: dict[str, Any]) -> Mode:
    mode = payload.get("mode")
    if mode not in ("scripted", "real"):
        raise ValueError(f"mode must be 'scripted' or 'real', got {mode!r}")
    return mode  # type: ignore[no-any-return]


def _status(payload: dict[str, Any]) -> dict[str, str]:
    return {"status": str(payload["status"]), "message": str(payload.get("message", ""))}


class BridgeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        port: int,
        state: BridgeState | None = None,
        identity: PodIdentity | None = None,
        reaper: JobReaper | None = None,
    ) -> None:
        self.state = state or BridgeState()
        self.identity = identity
        """Gives forwarded job submissions their pod's identity (None: forwarded as sent)."""
        self.reaper = reaper
        """Stops forwarded jobs whose RayCluster was deleted (None: they run on)."""
        super().__init__(("127.0.0.1", port), BridgeHandler)


def serve(port: int, kubeconfig: Path | None = None, identity_dir: Path | None = None) -> None:
    state = BridgeState()
    identity = reaper = None
    if kubeconfig is not None:
        identity = PodIdentity(kubeconfig, identity_dir or kubeconfig.parent / "pod-identity")
        reaper = JobReaper(raycluster_exists(identity.api), lambda: state.real_dashboard)
        reaper.start()
    with BridgeServer(port, state=state, identity=identity, reaper=reaper) as server:
        server.serve_forever()
