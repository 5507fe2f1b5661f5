"""The Helm chart, with the real Helm CLI: it lints, renders what the operator needs and no
more, refuses bad values by its schema, and manifests/ is its rendering (not stale)."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm_dev import build, manifests, reference
from kubellm_dev.paths import default_paths

CHART = default_paths().repo / "charts" / "kubellm"


@cache
def helm() -> Path:
    return build.installed(default_paths()).helm


def render(*args: str) -> list[dict[str, Any]]:
    text = manifests.helm_template(helm(), CHART, *args)
    return [d for d in yaml.safe_load_all(text) if d]


def refused(*args: str) -> str:
    with pytest.raises(subprocess.CalledProcessError) as caught:
        manifests.helm_template(helm(), CHART, *args)
    return str(caught.value.stderr)


def kinds(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        found.setdefault(doc["kind"], []).append(doc)
    return found


def rules(role: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def test_the_chart_lints_strictly() -> None:
    result = subprocess.run(
        [str(helm()), "lint", "--strict", str(CHART)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_operator_runs_the_images_command_locked_down_with_probes_on_kopfs_health() -> None:
    (deployment,) = kinds(render())["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "kubellm_operator"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KUBELLM_WATCH_NAMESPACES"] == "[]"
    assert env["KUBELLM_PEERING_NAME"] == "kubellm"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": int(env["KUBELLM_HEALTH_PORT"])}


def test_cluster_wide_rbac_has_no_wildcards_and_reads_secrets_only_by_name() -> None:
    found = kinds(render())
    (role,) = found["ClusterRole"]
    granted = rules(role)
    assert not [r for r in granted if "*" in r]
    secret_verbs = {verb for group, resource, verb in granted if resource == "secrets"}
    assert secret_verbs == {"get"}  # never list or watch Secrets
    assert ("kubellm.io", "llmdeployments/status", "patch") in granted
    assert ("ray.io", "rayservices", "patch") in granted
    assert ("kopf.dev", "clusterkopfpeerings", "patch") in granted
    assert "Role" not in found
    (peering,) = found["ClusterKopfPeering"]
    assert peering["metadata"]["name"] == "kubellm"


def test_watched_namespaces_get_roles_and_nothing_elsewhere() -> None:
    found = kinds(render("--set", "watchNamespaces={team-a,team-b}"))
    assert sorted(r["metadata"]["namespace"] for r in found["Role"]) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in found["RoleBinding"]) == ["team-a", "team-b"]
    (cluster_role,) = found["ClusterRole"]
    assert {(g, r) for g, r, _ in rules(cluster_role)} == {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "namespaces"),
    }
    assert {v for _, _, v in rules(cluster_role)} == {"list", "watch"}
    assert sorted(p["metadata"]["namespace"] for p in found["KopfPeering"]) == ["team-a", "team-b"]
    (deployment,) = found["Deployment"]
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KUBELLM_WATCH_NAMESPACES"] == '["team-a","team-b"]'


def test_the_schema_refuses_unknown_keys_and_wrong_types() -> None:
    assert "additional properties 'replicas' not allowed" in refused("--set", "replicas=2")
    assert "replicaCount" in refused("--set", "replicaCount=many")
    assert "logFormat" in refused("--set", "operator.logFormat=xml")


def test_a_disruption_budget_needs_two_replicas_and_replicas_need_peering() -> None:
    assert "needs replicaCount >= 2" in refused("--set", "podDisruptionBudget.enabled=true")
    budget = kinds(render("--set", "podDisruptionBudget.enabled=true", "--set", "replicaCount=2"))
    assert budget["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 1
    assert "needs peering.enabled" in refused(
        "--set", "replicaCount=2", "--set", "peering.enabled=false"
    )


def test_manifests_are_the_charts_defaults_rendered() -> None:
    paths = default_paths()
    assert not manifests.stale(paths, helm()), "stale manifests/: run `kubellm-dev manifests write`"
    docs = [d for d in yaml.safe_load_all(manifests.target(paths).read_text()) if d]
    assert docs[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "kubellm-system"},
    }


GITOPS = default_paths().repo / "examples" / "gitops"


def test_the_gitops_examples_install_this_chart_with_values_its_schema_accepts(
    tmp_path: Path,
) -> None:
    (application,) = yaml.safe_load_all((GITOPS / "argocd-application.yaml").read_text())
    source = application["spec"]["source"]
    releases = [
        d
        for d in yaml.safe_load_all((GITOPS / "flux-helmrelease.yaml").read_text())
        if d["kind"] == "HelmRelease"
    ]
    (release,) = releases
    assert source["path"] == release["spec"]["chart"]["spec"]["chart"] == "charts/kubellm"
    for values in (source["helm"]["valuesObject"], release["spec"]["values"]):
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        assert kinds(render("--values", str(path)))["PodDisruptionBudget"]


def test_the_argocd_health_example_holds_the_charts_health_checks() -> None:
    (config,) = yaml.safe_load_all((GITOPS / "argocd-health.yaml").read_text())
    files = CHART / "files"
    assert config["data"] == {
        f"resource.customizations.health.kubellm.io_{kind}": (
            files / f"argocd-health-{kind.lower()}.lua"
        ).read_text()
        for kind in ("LLMDeployment", "FineTuneJob")
    }


def test_ray_pods_dashboard_only_from_kuberay_the_operator_and_the_namespace() -> None:
    serving = "networkPolicy.servingFrom[0].namespaceSelector.matchLabels.team=web"
    found = kinds(
        render(
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "watchNamespaces={a,b}",
            "--set",
            serving,
        )
    )
    policies = found["NetworkPolicy"]
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["a", "b"]
    ingress = {
        rule["ports"][0]["port"] if "ports" in rule else "ray": rule
        for rule in policies[0]["spec"]["ingress"]
    }
    dashboard = [
        peer.get("namespaceSelector", {}).get("matchLabels") for peer in ingress[8265]["from"]
    ]
    assert dashboard == [
        {"kubernetes.io/metadata.name": "kuberay-system"},
        {"kubernetes.io/metadata.name": "kubellm-system"},
        None,  # the namespace's own pods (KubeRay's submitter Jobs)
    ]
    assert {"namespaceSelector": {"matchLabels": {"team": "web"}}} in ingress[8000]["from"]
    assert "from" not in ingress[8080]  # metricsFrom unset: any scraper
    assert "needs networkPolicy.namespaces" in refused("--set", "networkPolicy.enabled=true")


def test_monitoring_objects_ship_the_alerts_and_dashboard_and_scrape_pod_by_pod() -> None:
    flags = ("serviceMonitor", "podMonitor", "prometheusRule", "dashboard")
    found = kinds(render(*(a for f in flags for a in ("--set", f"monitoring.{f}.enabled=true"))))
    (rule,) = found["PrometheusRule"]
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["spec"] == alerts
    (service_monitor,) = found["ServiceMonitor"]
    relabel = service_monitor["spec"]["endpoints"][0]["relabelings"]
    assert relabel == [{"targetLabel": "job", "replacement": "kubellm-operator"}]
    (pod_monitor,) = found["PodMonitor"]
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "kubellm",
        "app.kubernetes.io/managed-by": "kubellm-operator",
    }
    dashboards = [c for c in found["ConfigMap"] if c["metadata"]["name"].endswith("-dashboard")]
    (dashboard,) = dashboards
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert json.loads(dashboard["data"]["kubellm.json"]) == shipped
    assert "PrometheusRule" not in kinds(render())  # all opt-in


def dashboard_queries() -> list[str]:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses them (as recording rules); the scrape e2e runs them for data."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/install.sh installs Debian's prometheus package"
    rules = [{"record": f"kubellm:panel{i}", "expr": q} for i, q in enumerate(dashboard_queries())]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(rules) >= 15


def test_the_configuration_reference_is_generated_from_the_schema_and_settings() -> None:
    repo = default_paths().repo
    text = reference.render(repo)
    assert reference.target(repo).read_text() == text, "run `kubellm-dev reference write`"
    assert "| `networkPolicy.servingFrom` |" in text
    assert "| `KUBELLM_PEERING_LIFETIME_S` | `30` |" in text
