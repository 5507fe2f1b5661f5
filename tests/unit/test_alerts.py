"""The alert rules: valid for Prometheus, unit-tested with promtool, each with a runbook entry."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from kubellm_dev.paths import REPO_ROOT

RULES = REPO_ROOT / "charts" / "kubellm" / "files" / "alerts.yaml"
TESTS = REPO_ROOT / "tests" / "alerts"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/kubellm/kubellm/blob/main/docs/runbook.md#"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool missing: scripts/install.sh installs Debian's prometheus package")
    return found


def alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_are_valid_prometheus_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtools_unit_tests_of_every_alert_pass() -> None:
    files = sorted(TESTS.glob("*.test.yaml"))
    result = subprocess.run(
        [promtool(), "test", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        cwd=TESTS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_a_unit_test_and_has_its_runbook_entry() -> None:
    fired = {
        case["alertname"]
        for path in TESTS.glob("*.test.yaml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    headings = set(re.findall(r"^## (\w+)$", RUNBOOK.read_text(), re.M))
    for rule in alerts():
        name = str(rule["alert"])
        assert name in fired, f"{name}: no promtool test expects it to fire"
        assert name in headings, f"{name}: no entry in docs/runbook.md"
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == RUNBOOK_URL + name.lower()
