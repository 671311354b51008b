"""deploy/prometheus/alerts.yml: Prometheus's own promtool accepts it (``check rules``) and its
unit tests pass (``test rules`` on alerts_test.yml); every alert is shown there firing and
resolving, and has a runbook section in docs/operations.md."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml
from prometheus_helpers import ALERTS, ALERTS_TEST, OPERATIONS, alert_rules, binary


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    """Each alert fires from synthetic series and resolves again (alerts_test.yml)."""
    result = promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def minutes(duration: str) -> float:
    match = re.fullmatch(r"([0-9]+)([smh])", duration)
    assert match, duration
    return int(match.group(1)) * {"s": 1 / 60, "m": 1, "h": 60}[match.group(2)]


def test_every_alert_is_shown_quiet_firing_then_resolved() -> None:
    """For each alert, alerts_test.yml checks it is not firing, then firing, then not firing
    again, in that order: a rule that never resolves (or always fires) fails promtool."""
    data = yaml.safe_load(ALERTS_TEST.read_text())
    checks: dict[str, list[tuple[float, bool]]] = {}
    for test in data["tests"]:
        for case in test["alert_rule_test"]:
            firing = bool(case.get("exp_alerts"))
            checks.setdefault(case["alertname"], []).append((minutes(case["eval_time"]), firing))
    for rule in alert_rules():
        name = rule["alert"]
        seen = [firing for _, firing in sorted(checks.get(name, []))]
        assert seen[:1] == [False] and True in seen, f"{name}: not shown quiet, then firing"
        assert False in seen[seen.index(True) :], f"{name}: not shown resolved after firing"


def anchor(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading made of one word."""
    return heading.strip().lower()


def test_every_alert_has_a_runbook_section_and_says_how_bad() -> None:
    headings = {anchor(h) for h in re.findall(r"^### ([A-Za-z]+)$", OPERATIONS.read_text(), re.M)}
    for rule in alert_rules():
        name = rule["alert"]
        annotations: dict[str, Any] = rule["annotations"]
        assert annotations["runbook"] == f"docs/operations.md#{anchor(name)}", name
        assert anchor(name) in headings, f"docs/operations.md has no section ### {name}"
        assert annotations["summary"].strip(), name
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
    assert len({rule["alert"] for rule in alert_rules()}) == len(alert_rules())
