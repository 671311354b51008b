"""deploy/grafana/scheduler.json: it loads through Grafana's own dashboard models
(grafana-foundation-sdk) without losing anything, every panel and query goes through the
``datasource`` variable, and it shows what an operator needs."""

from __future__ import annotations

import json
from typing import Any

from prometheus_helpers import dashboard, dashboard_exprs, dashboard_panels, metric_names
from skip_helpers import require_or_skip

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_the_dashboard_loads_through_grafanas_models() -> None:
    try:
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.cog.plugins import register_default_plugins
        from grafana_foundation_sdk.models import prometheus
        from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel
    except ImportError as exc:  # the test extra installs it on Python 3.11 and later
        require_or_skip(f"grafana-foundation-sdk is not installed: {exc}")
    register_default_plugins()
    data = dashboard()
    model = Dashboard.from_json(data)
    assert model.panels is not None
    for source, loaded in zip(data["panels"], model.panels, strict=True):
        assert isinstance(loaded, RowPanel if source["type"] == "row" else Panel), source["title"]
        if isinstance(loaded, Panel):
            assert loaded.targets, source["title"]
            # each query decoded as a Prometheus query, by the panel's data source type
            assert all(isinstance(t, prometheus.Dataquery) for t in loaded.targets)
    # written back, it holds the same panels, queries and variables
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert again["uid"] == data["uid"] and again["title"] == data["title"]

    def essentials(d: dict[str, Any]) -> list[Any]:
        return [
            (
                p["id"],
                p["type"],
                p["title"],
                p["gridPos"],
                [t["expr"] for t in p.get("targets", [])],
            )
            for p in d["panels"]
        ]

    assert essentials(again) == essentials(data)
    assert [v["name"] for v in again["templating"]["list"]] == ["datasource", "transition"]


def test_every_query_goes_through_the_datasource_variable() -> None:
    data = dashboard()
    (variable,) = [v for v in data["templating"]["list"] if v["name"] == "datasource"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    panels = [p for p in dashboard_panels(data) if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    (transition,) = [v for v in data["templating"]["list"] if v["name"] == "transition"]
    assert transition["datasource"] == DATASOURCE


def test_panels_have_unique_ids_and_fit_the_grid_without_overlap() -> None:
    data = dashboard()
    panels = list(dashboard_panels(data))
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_the_dashboard_shows_what_an_operator_needs() -> None:
    """Pending rows and jobs per transition, completions by path, the lateness histogram,
    failed and retried runs, webhook delivery: each family is queried by some panel."""
    names: set[str] = set()
    for expr in dashboard_exprs(dashboard()):
        names |= metric_names(expr)
    assert names >= {
        "scheduler_up",
        "scheduler_upcoming_meetings",
        "scheduler_jobs",
        "scheduler_missing_jobs",
        "scheduler_orphan_jobs",
        "scheduler_overdue_meetings",
        "scheduler_completions_total",
        "scheduler_completion_lateness_seconds_bucket",
        "scheduler_failed_runs",
        "scheduler_retried_runs",
        "scheduler_webhook_deliveries_total",
        "scheduler_webhook_failures_total",
        "scheduler_webhook_backlog",
    }
    types = {p["type"] for p in dashboard_panels(dashboard())}
    assert "heatmap" in types  # the lateness histogram itself, not only its quantiles
