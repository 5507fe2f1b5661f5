"""Operator benchmark on the local cluster: create→RayService latency, 1,000 objects, writes, RSS.

Run by hand, inside a loopback-only namespace (it starts its own cluster and operator):

    .venv/bin/kubellm-dev netns -- .venv/bin/python benchmarks/operator/bench_operator.py

The latency run alternates its objects between the operator and floor_controller.py (one
watch event in, one apply out: the least any controller can do on this API server), so the
operator's create→RayService is measured beside its floor. It prints a table;
docs/benchmarks.md records the figures with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch

from kubellm_dev.cluster import LocalCluster
from kubellm_dev.kwok import Pool
from kubellm_dev.operator_proc import OperatorProcess, install_crds
from kubellm_dev.paths import default_paths
from kubellm_dev.waiting import wait_for

GROUP, VERSION, PLURAL = "kubellm.io", "v1alpha1", "llmdeployments"
NAMESPACE = "bench"
FLOOR_NAMESPACE = "bench-floor"  # floor_controller.py's objects; the operator does not watch it
FLOOR = Path(__file__).with_name("floor_controller.py")
# CPU-only replicas with tiny requests, so 1,000 RayServices (2,000 pods) fit the fake nodes:
# the benchmark measures the operator, not GPU capacity.
POOLS = (Pool(name="bench", nodes=25, cpu="1000", memory="4Ti", pods=110),)
OPERATOR_ENV = {
    "KUBELLM_HEAD_CPU": "10m",
    "KUBELLM_HEAD_MEMORY": "64Mi",
    "KUBELLM_WATCH_NAMESPACES": json.dumps([NAMESPACE]),
}
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}


def llmd(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
            "resources": {"gpusPerReplica": 0, "cpu": "10m", "memory": "64Mi"},
            "placement": {"nodePool": "bench"},
        },
    }


def apiserver_writes(cluster: LocalCluster) -> dict[str, float]:
    """Write requests to our two resources, from the API server's own request counter."""
    keys = cluster.state_dir / "pki"
    context = ssl.create_default_context(cafile=str(keys / "ca.crt"))
    context.load_cert_chain(str(keys / "admin.crt"), str(keys / "admin.key"))
    url = f"https://127.0.0.1:{cluster.ports.apiserver}/metrics"
    with urllib.request.urlopen(url, context=context, timeout=30) as resp:
        text = resp.read().decode()
    totals: dict[str, float] = {"llmdeployments": 0.0, "rayservices": 0.0}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") in totals:
            # rayservices are also written by KubeRay (status): count only our server-side applies.
            if labels["resource"] == "rayservices" and labels["verb"] != "APPLY":
                continue
            totals[labels["resource"]] += float(line.rsplit(" ", 1)[1])
    return totals


def operator_counter(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def histogram_totals(text: str, name: str) -> dict[str, tuple[float, float]]:
    """Per label set of a histogram: (count, sum), from its _count and _sum lines."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for suffix, into in (("_sum", sums), ("_count", counts)):
            if line.startswith(name + suffix):
                labels = line[len(name + suffix) :].rsplit(" ", 1)[0] or "{}"
                into[labels] = float(line.rsplit(" ", 1)[1])
    return {k: (counts[k], sums.get(k, 0.0)) for k in counts}


def where_time_goes(text: str, since: str = "", phase: str = "") -> list[tuple[str, str]]:
    """The operator's own accounting: queue wait, reconcile time, time per API call, between
    the ``since`` and ``text`` scrapes of its metrics."""
    rows = []
    for name, what in (
        ("kubellm_queue_wait_seconds", "queue wait"),
        ("kubellm_reconcile_duration_seconds", "reconcile"),
        ("kubellm_api_call_seconds", "call"),
    ):
        before = histogram_totals(since, name)
        for labels, (count_now, sum_now) in sorted(histogram_totals(text, name).items()):
            count = count_now - before.get(labels, (0.0, 0.0))[0]
            mean = (sum_now - before.get(labels, (0.0, 0.0))[1]) * 1000 / max(count, 1)
            rows.append((f"{phase}{what} {labels} (count, mean ms)", f"{count:.0f}, {mean:.1f}"))
    return rows


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class RayServiceWatch(threading.Thread):
    """Records when each RayService first appears (ADDED), on this process's monotonic clock,
    by ``namespace/name``."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        stream = watch.Watch().stream(
            custom.list_cluster_custom_object, "ray.io", "v1", "rayservices"
        )
        self.ready.set()
        try:
            for event in stream:
                meta = event["object"]["metadata"]
                self.seen.setdefault(f"{meta['namespace']}/{meta['name']}", time.monotonic())
        except (urllib3.exceptions.HTTPError, OSError):
            return  # the cluster went away at the end of the run


class StatusWatch(threading.Thread):
    """Why the operator wrote each status: which fields changed from the previous one."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.last: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, int] = {}

    def run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL
        )
        try:
            for event in stream:
                obj = event["object"]
                status = obj.get("status") or {}
                before = self.last.get(obj["metadata"]["name"])
                self.last[obj["metadata"]["name"]] = status
                if before is None or status == before:
                    continue
                for field in sorted(set(status) | set(before)):
                    if field == "conditions":
                        self._conditions(before.get(field) or [], status.get(field) or [])
                    elif status.get(field) != before.get(field):
                        self.changed[field] = self.changed.get(field, 0) + 1
        except (urllib3.exceptions.HTTPError, OSError):
            return

    def _conditions(self, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
        old = {c["type"]: c for c in before}
        for cond in after:
            prev = old.get(cond["type"]) or {}
            for part in ("status", "reason", "message"):
                if cond.get(part) != prev.get(part):
                    key = f"conditions[{cond['type']}].{part}"
                    self.changed[key] = self.changed.get(key, 0) + 1
                    break


def converged(custom: client.CustomObjectsApi, count: int) -> int:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
    return sum(
        1
        for o in items
        if (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
        and (o.get("status") or {}).get("rayServiceName")
    )


def ready(custom: client.CustomObjectsApi) -> int:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
    return sum(1 for o in items if (o.get("status") or {}).get("phase") == "Ready")


def create_and_wait(
    custom: client.CustomObjectsApi, watcher: RayServiceWatch, namespace: str, name: str
) -> tuple[float, float]:
    """Create one LLMDeployment; (ms of the create call, ms until its RayService appears)."""
    started = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, llmd(name))
    call = (time.monotonic() - started) * 1000
    wait_for(
        lambda: f"{namespace}/{name}" in watcher.seen,
        bool,
        timeout=60,
        what=f"RayService {namespace}/{name}",
        interval=0.005,
    )
    return call, (watcher.seen[f"{namespace}/{name}"] - started) * 1000


def start_floor(
    custom: client.CustomObjectsApi, kubeconfig: Path, template_of: str, workdir: Path
) -> subprocess.Popen[bytes]:
    """floor_controller.py, with kubellm's RayService for ``template_of`` as its template."""
    child = custom.get_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", template_of
    )
    template = workdir / "rayservice.json"
    template.write_text(json.dumps({k: child[k] for k in ("apiVersion", "kind", "spec")}))
    argv = [sys.executable, str(FLOOR), str(kubeconfig), FLOOR_NAMESPACE, str(template)]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL)


def measure_latency(
    custom: client.CustomObjectsApi,
    watcher: RayServiceWatch,
    count: int,
    operator: OperatorProcess,
    kubeconfig: Path,
) -> tuple[dict[str, list[float]], list[tuple[str, str]]]:
    """Create objects one at a time (no queueing behind others), alternating between kubellm's
    namespace and the floor controller's; ms until each child appears, per contender, and the
    operator's accounting of that run."""
    metrics_start = operator.metrics()
    calls: list[float] = []  # the benchmark's own create calls: the API server's write path
    latencies: dict[str, list[float]] = {"kubellm": [], "floor": []}
    with tempfile.TemporaryDirectory() as workdir:
        call, took = create_and_wait(custom, watcher, NAMESPACE, "lat-0000")
        calls.append(call)
        latencies["kubellm"].append(took)
        floor = start_floor(custom, kubeconfig, "lat-0000", Path(workdir))
        try:
            create_and_wait(custom, watcher, FLOOR_NAMESPACE, "floor-warm-up")  # not counted
            for i in range(1, count):
                for contender, namespace, name in (
                    ("floor", FLOOR_NAMESPACE, f"floor-{i:04d}"),
                    ("kubellm", NAMESPACE, f"lat-{i:04d}"),
                ):
                    call, took = create_and_wait(custom, watcher, namespace, name)
                    calls.append(call)
                    latencies[contender].append(took)
        finally:
            floor.terminate()
            floor.wait(timeout=30)
    spent = [
        ("latency run: the benchmark's own create call p50 (ms)", f"{percentile(calls, 0.5):.0f}"),
        ("latency run: the benchmark's own create call p99 (ms)", f"{percentile(calls, 0.99):.0f}"),
        *where_time_goes(operator.metrics(), metrics_start, "latency run: "),
    ]
    return latencies, spent


def remove_floor(custom: client.CustomObjectsApi) -> None:
    """The floor's objects go before the burst, which then runs on kubellm's objects alone."""
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, FLOOR_NAMESPACE, PLURAL)
    wait_for(
        lambda: custom.list_namespaced_custom_object(
            "ray.io", "v1", FLOOR_NAMESPACE, "rayservices"
        )["items"],
        lambda items: not items,
        timeout=600,
        what="the floor's RayServices to be gone",
        interval=2,
    )


def idle_writes_per_minute(cluster: LocalCluster, seconds: int) -> float:
    """Steady state: nothing changes, so the operator should write nothing."""
    before = apiserver_writes(cluster)
    time.sleep(seconds)  # measuring an idle interval, not waiting for a condition
    after = apiserver_writes(cluster)
    return (sum(after.values()) - sum(before.values())) * 60 / seconds


def measure_burst(
    cluster: LocalCluster,
    custom: client.CustomObjectsApi,
    operator: OperatorProcess,
    *,
    statuses: StatusWatch,
    args: argparse.Namespace,
    pid: int,
    writes_before: dict[str, float],
) -> list[tuple[str, str]]:
    """Burst to the total; time until the operator has converged on every object, then Ready."""
    metrics_before = operator.metrics()
    start = time.monotonic()
    for i in range(args.total_objects - args.latency_objects):
        body = llmd(f"burst-{i:04d}")
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    created_at = time.monotonic() - start
    wait_for(
        lambda: converged(custom, args.total_objects),
        lambda n: n == args.total_objects,
        timeout=1800,
        what="every LLMDeployment to have its RayService and current status",
        interval=2,
    )
    converge_s = time.monotonic() - start
    wait_for(
        lambda: ready(custom),
        lambda n: n == args.total_objects,
        timeout=3600,
        what="all Ready",
        interval=5,
    )
    ready_s = time.monotonic() - start
    writes_after = apiserver_writes(cluster)
    metrics_after = operator.metrics()
    burst = args.total_objects - args.latency_objects
    reconciles = operator_counter(metrics_after, "kubellm_reconcile_total")  # the whole run
    # Writes by the operator over the whole run (the latency run's objects progress during the
    # burst too): LLMDeployment status patches and RayService applies, minus the creates.
    # The floor controller's objects: the benchmark's creates of them and the floor's applies
    # are not the operator's either (their removal is one DELETECOLLECTION, not counted).
    floor = 2 * args.latency_objects
    ours = sum(writes_after.values()) - sum(writes_before.values()) - args.total_objects - floor
    results = [
        (f"{burst} created in (s)", f"{created_at:.1f}"),
        (f"{args.total_objects} converged: child + status (s)", f"{converge_s:.1f}"),
        (f"{args.total_objects} Ready (s)", f"{ready_s:.1f}"),
        ("operator API writes per object (create → Ready)", f"{ours / args.total_objects:.2f}"),
        ("operator API writes per reconcile", f"{ours / max(reconciles, 1):.2f}"),
        (f"operator RSS at {args.total_objects} objects (MiB)", f"{rss_mib(pid):.0f}"),
    ]

    results += where_time_goes(operator.metrics(), metrics_before, "burst: ")
    results += [
        (f"status writes changing {field}", str(count))
        for field, count in sorted(statuses.changed.items(), key=lambda kv: -kv[1])
    ]
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-objects", type=int, default=200)
    parser.add_argument("--total-objects", type=int, default=1000)
    parser.add_argument("--steady-seconds", type=int, default=60)
    args = parser.parse_args()

    paths = default_paths()
    cluster = LocalCluster(paths, name="bench", pools=POOLS)
    results: list[tuple[str, str]] = []
    info = cluster.up()
    try:
        operator = OperatorProcess(
            kubeconfig=cluster.kubeconfig,
            supervisor=cluster.supervisor,
            ray_proxy=cluster.ray_proxy,
            extra_env=OPERATOR_ENV,
        )
        install_crds(paths.kubectl, cluster.kubeconfig, paths.repo / "crds")
        pid = operator.start().pid
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        for namespace in (NAMESPACE, FLOOR_NAMESPACE):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        watcher = RayServiceWatch(api)
        watcher.start()
        statuses = StatusWatch(api)
        statuses.start()
        watcher.ready.wait(10)

        writes = apiserver_writes(cluster)  # writes per object count the whole run
        latencies, spent = measure_latency(
            custom, watcher, args.latency_objects, operator, cluster.kubeconfig
        )
        for contender, values in latencies.items():
            results += [
                (f"{contender}: create→RayService p50 (ms)", f"{percentile(values, 0.50):.0f}"),
                (f"{contender}: create→RayService p99 (ms)", f"{percentile(values, 0.99):.0f}"),
                (f"{contender}: create→RayService max (ms)", f"{max(values):.0f}"),
                (f"{contender}: objects in the latency run", str(len(values))),
            ]
        results += spent
        remove_floor(custom)

        results += measure_burst(
            cluster, custom, operator, statuses=statuses, args=args, pid=pid, writes_before=writes
        )
        per_minute = idle_writes_per_minute(cluster, args.steady_seconds)
        results += [
            ("operator API writes per minute at steady state", f"{per_minute:.1f}"),
            ("operator RSS after steady state (MiB)", f"{rss_mib(pid):.0f}"),
        ]
    finally:
        cluster.down()

    cores = len(os.sched_getaffinity(0))
    print(f"\nmachine: {platform.machine()} {platform.processor() or ''}, {cores} cores")
    print(f"cluster start: {info.timings}")
    width = max(len(k) for k, _ in results)
    for key, value in results:
        print(f"{key:<{width}}  {value:>10}")


if __name__ == "__main__":
    main()
