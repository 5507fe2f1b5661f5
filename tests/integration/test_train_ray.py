"""The trainer on Ray Train with two CPU workers (gloo), against a real Ray head: progress
reaches the job's status as the API server would receive it, and when a worker dies mid-run
Ray Train restarts the worker group from the last checkpoint and the run still publishes.

The worker is killed while rank 0 is held inside a progress write (the test's API server
answers it only after the kill), so the kill always lands mid-run, whatever the speed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from kubellm_dev import netns
from kubellm_dev.procs import Supervisor
from kubellm_dev.ray_head import ray_env, start_ray_head
from kubellm_runtime.train.output import METADATA

from .conftest import _unavailable, free_ray_ports
from .test_train import dataset, train_args

pytestmark = pytest.mark.integration
HOLD_STEP = 5  # checkpoints were saved at steps 2 and 4 by then
RUN_DEADLINE_S = 600.0


class StatusApi(BaseHTTPRequestHandler):
    """Records status writes; holds the first write of HOLD_STEP until ``release`` is set."""

    writes: ClassVar[list[dict[str, Any]]] = []
    held: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = body["status"]
        StatusApi.writes.append(status)
        if status.get("progress", {}).get("step") == HOLD_STEP and not StatusApi.held.is_set():
            StatusApi.held.set()
            StatusApi.release.wait(RUN_DEADLINE_S)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None: ...


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """A real Ray head on free ports: its GCS address, its process's PID, its temp dir."""
    if not netns.loopback_only():
        _unavailable("Ray runs only in a loopback-only namespace here: use `make test`")
    ports = free_ray_ports()
    supervisor = Supervisor(tmp_path_factory.mktemp("ray-logs"))
    temp = tmp_path_factory.mktemp("ray-temp")
    try:
        head = start_ray_head(supervisor, temp, ports)
        yield f"127.0.0.1:{ports.gcs}", head.pid, temp
    finally:
        supervisor.stop_all()


@pytest.fixture
def status_api() -> Iterator[str]:
    StatusApi.writes, StatusApi.held, StatusApi.release = [], threading.Event(), threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), StatusApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    StatusApi.release.set()
    server.shutdown()
    server.server_close()


def train_workers(head_pid: int) -> list[psutil.Process]:
    """The Ray Train worker processes under the head (started by this test's supervisor)."""
    children = psutil.Process(head_pid).children(recursive=True)
    return [p for p in children if "RayTrainWorker" in " ".join(_cmdline(p))]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_two_workers_train_and_survive_a_worker_dying(
    ray_head: tuple[str, int, Path], status_api: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    address, head_pid, temp = ray_head
    token = tmp_path / "token"
    token.write_text("test-token")
    args = train_args(tiny_model_dir, dataset(tmp_path, records=40), tmp_path, max_steps=12)
    args = args.model_copy(
        update={
            "workers": 2,
            "status": {"namespace": "team", "name": "zebra", "uid": "u-1", "interval_s": 0},
        }
    )
    env = {
        **os.environ,
        **ray_env(temp),
        "RAY_ADDRESS": address,
        "KUBELLM_TRAIN_API_URL": status_api,
        "KUBELLM_TRAIN_API_TOKEN_FILE": str(token),
    }
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "kubellm_runtime.train", "--args-json", args.model_dump_json()],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + RUN_DEADLINE_S
        while not StatusApi.held.wait(1.0):  # the run reached HOLD_STEP, or ended early
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached the held step"
        workers = train_workers(head_pid)
        assert len(workers) == 2, [_cmdline(w) for w in workers]
        kill_count = len(StatusApi.writes)
        workers[-1].send_signal(signal.SIGKILL)
        StatusApi.release.set()
        assert driver.wait(RUN_DEADLINE_S) == 0, (tmp_path / "driver.log").read_text()[-4000:]
    finally:
        StatusApi.release.set()
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)
        log.close()

    before = [w["progress"]["step"] for w in StatusApi.writes[:kill_count] if "progress" in w]
    after = [w["progress"]["step"] for w in StatusApi.writes[kill_count:] if "progress" in w]
    assert before[0] == 1
    assert after, "no progress after the restart"
    assert min(after) > 1, after  # the restarted workers resumed from a checkpoint
    assert after[-1] == 12
    assert StatusApi.writes[-1] == {"adapterUri": args.output_uri}
    meta = json.loads((tmp_path / "adapter" / METADATA).read_text())
    assert (meta["workers"], meta["steps"]) == (2, 12)


def test_inputs_at_fault_on_ray_train_end_the_driver_with_exit_2_and_no_retry(
    ray_head: tuple[str, int, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Rank 0's verdict reaches the driver (Ray Train's own result holds only the latest
    checkpoint's metrics), so KubeRay sees the run fail for its inputs."""
    address, _, temp = ray_head
    data = dataset(tmp_path, records=8)
    data.write_text(data.read_text() + '{"instruction": "q"}\n')
    args = train_args(tiny_model_dir, data, tmp_path, max_steps=4)
    driver = subprocess.run(
        [sys.executable, "-m", "kubellm_runtime.train", "--args-json", args.model_dump_json()],
        env={**os.environ, **ray_env(temp), "RAY_ADDRESS": address},
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_S,
        check=False,
    )
    assert driver.returncode == 2, driver.stdout[-3000:] + driver.stderr[-3000:]
    assert "line 9: missing field 'response'" in driver.stdout + driver.stderr
    assert not (tmp_path / "adapter").exists()
