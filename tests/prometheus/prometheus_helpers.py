"""What the tests of deploy/ share: the rule file, the dashboard, their PromQL expressions and
the metric names those name, Debian's prometheus binaries, and a scrape of GET /metrics."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from skip_helpers import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "scheduler.json"
OPERATIONS = ROOT / "docs" / "operations.md"
# the series Prometheus itself writes for each target (not ours, but an alert may use it)
SCRAPE_SERIES = frozenset({"up"})
# Grafana's variables in a panel's expression, and a value that makes it plain PromQL
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def binary(name: str) -> str:
    """The path of a binary of Debian's package prometheus (promtool, prometheus); skipped, or
    failed under SCHEDULER_REQUIRE_POSTGRES (CI installs it: scripts/install-postgres.sh)."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        require_or_skip(f"{name} is not installed (Debian package prometheus)")
    return path


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of deploy/prometheus/alerts.yml."""
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def dashboard_panels(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of the dashboard, those inside collapsed rows too."""
    for panel in data["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(data: dict[str, Any]) -> list[str]:
    """The PromQL of every panel's targets, Grafana's variables replaced by plain values."""
    exprs = []
    for panel in dashboard_panels(data):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    return exprs


def variable_metric_names(data: dict[str, Any]) -> set[str]:
    """The metrics the dashboard's query variables read (Grafana's label_values(metric, label))."""
    names = set()
    for variable in data["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(
                r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*\w+\s*\)", text
            )
            assert match, f"variable {variable['name']}: not label_values(metric, label): {text}"
            names.add(match.group(1))
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects, from its syntax tree (promql-parser); a
    selector by __name__ alone is refused (it would hide a name from this check)."""
    import promql_parser

    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            names.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(
            node, (promql_parser.ParenExpr, promql_parser.SubqueryExpr, promql_parser.UnaryExpr)
        ):
            walk(node.expr)
        else:
            assert isinstance(node, (promql_parser.NumberLiteral, promql_parser.StringLiteral)), (
                f"{type(node).__name__} in {expr!r}"
            )

    walk(promql_parser.parse(expr))
    return names


def expression_names() -> dict[str, set[str]]:
    """Where each metric name is used: 'alert X' or 'dashboard' -> the names it selects."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        used[f"alert {rule['alert']}"] = metric_names(rule["expr"])
    data = dashboard()
    names = variable_metric_names(data)
    for expr in dashboard_exprs(data):
        names |= metric_names(expr)
    used["dashboard"] = names
    return used


def sample_names(text: str) -> set[str]:
    """The sample names of a text exposition as Prometheus stores them (a histogram's _bucket,
    _sum and _count, a counter's _total)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def unknown_names(exported: set[str]) -> dict[str, set[str]]:
    """The names each alert or the dashboard uses that are not in ``exported`` (nor the scrape's
    own ``up``); empty when all are."""
    allowed = exported | SCRAPE_SERIES
    return {
        where: names - allowed for where, names in expression_names().items() if names - allowed
    }
