"""scheduler_admin.metrics: the Prometheus families built from backend.metrics(), each figure
labelled with its transition, and ``scheduler-admin metrics`` (a fake backend of the contract's
shape; no database)."""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run
from docs_helpers import blocks, section
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scheduler_admin import cli
from scheduler_admin.core import PATHS
from scheduler_admin.exceptions import ConnectionFailed, InvalidInput
from scheduler_admin.metrics import HELP, SchedulerCollector, render, render_data

BOUNDS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 3600]

CONTRACT: dict[str, Any] = {
    "backend": "postgres",
    "enabled": True,
    "upcoming_meetings": 120,
    "jobs": 118,
    "missing_jobs": 2,
    "orphan_jobs": 1,
    "overdue_meetings": 3,
    "completions": {"job": 40, "sweep": 7, "waker": 900, "reconcile": 2, "recover": 5, "write": 11},
    "lateness": {
        # cumulative: le -> completions at most that late
        "buckets": [
            [b, n]
            for b, n in zip(
                BOUNDS, [700, 850, 900, 910, 930, 940, 960, 962, 963, 964, 964], strict=True
            )
        ],
        "count": 965,
        "sum": 5432.25,
    },
    "failed_runs": 6,
    "retried_runs": 4,
    # revision 0009 (a database without them reports 0: tests/unit/test_failing_rows_checks.py)
    "failing_rows": 2,
    "reconcile_skipped_in_a_row": 0,
    "reconcile_failed_in_a_row": 1,
    # revision 0011: the job horizon (null: none) and the rows beyond it
    "job_horizon_seconds": 86400.0,
    "beyond_horizon": 7,
    "webhooks": {
        "enabled": True,
        "delivered": 950,
        "failed": 3,
        "attempt_failures": 17,
        "backlog": 12,
        "oldest_pending_seconds": 42.5,
    },
}

# the scheduler as a whole: no transition label
GLOBAL_GAUGES = {
    "scheduler_up": 1,
    "scheduler_reconcile_skipped_in_a_row": 0,
    "scheduler_reconcile_failed_in_a_row": 1,
    "scheduler_webhooks_enabled": 1,
}
GAUGES = {
    **GLOBAL_GAUGES,
    "scheduler_enabled": 1,
    "scheduler_upcoming_meetings": 120,
    "scheduler_jobs": 118,
    "scheduler_missing_jobs": 2,
    "scheduler_orphan_jobs": 1,
    "scheduler_overdue_meetings": 3,
    "scheduler_failed_runs": 6,
    "scheduler_retried_runs": 4,
    "scheduler_failing_rows": 2,
    "scheduler_job_horizon_seconds": 86400.0,
    "scheduler_rows_beyond_horizon": 7,
    "scheduler_webhook_backlog": 12,
    "scheduler_webhook_oldest_pending_seconds": 42.5,
}
MEETINGS = (("transition", "meetings"),)
COUNTERS = {  # family name (the parser drops _total) -> value
    "scheduler_webhook_deliveries": 950,
    "scheduler_webhook_failures": 3,
    "scheduler_webhook_attempt_failures": 17,
}


class FakeBackend:
    def __init__(self, data: dict[str, Any] | Exception) -> None:
        self.data = data
        self.calls = 0
        self.closed = 0
        self.asked: list[str | None] = []  # the transition= of each call
        self.registered = ["meetings"]  # what transitions() lists

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]:
        self.calls += 1
        self.asked.append(transition)
        if isinstance(self.data, Exception):
            raise self.data
        return copy.deepcopy(self.data)

    def transitions(self) -> list[dict[str, Any]]:
        return [{"name": name} for name in self.registered]

    def close(self) -> None:
        self.closed += 1


def parse(text: str) -> dict[str, Any]:
    """{family name: (type, help, {(sample name, labels as a sorted tuple): value})}"""
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        out[family.name] = (family.type, family.documentation, samples)
    return out


def collect_text(backend: FakeBackend) -> str:
    registry = CollectorRegistry()
    registry.register(SchedulerCollector(backend))
    return generate_latest(registry).decode()


def test_every_family_with_its_exact_name_type_and_value() -> None:
    backend = FakeBackend(CONTRACT)
    families = parse(collect_text(backend))
    assert backend.calls == 1  # one call per collection (registering called nothing)
    expected = (
        set(GAUGES)
        | set(COUNTERS)
        | {"scheduler_completions", "scheduler_completion_lateness_seconds"}
    )
    assert set(families) == expected
    for name, value in GAUGES.items():
        kind, _, samples = families[name]
        labels = () if name in GLOBAL_GAUGES else MEETINGS
        assert kind == "gauge" and samples == {(name, labels): value}, name
    for name, value in COUNTERS.items():
        kind, _, samples = families[name]
        assert kind == "counter" and samples == {(name + "_total", MEETINGS): value}, name


def test_one_scrape_tells_every_registered_transition_apart() -> None:
    """One collection calls metrics(transition=name) for each registered transition (meetings
    first) and labels each figure with it; the scheduler's own state is reported once."""
    backend = FakeBackend(CONTRACT)
    backend.registered = ["meetings", "memberships"]
    families = parse(collect_text(backend))
    assert backend.asked == ["meetings", "memberships"]
    for name in set(GAUGES) - set(GLOBAL_GAUGES):
        samples = families[name][2]
        assert set(samples) == {
            (name, (("transition", t),)) for t in ("meetings", "memberships")
        }, name
    for name in GLOBAL_GAUGES:
        assert set(families[name][2]) == {(name, ())}, name
    completions = families["scheduler_completions"][2]
    assert len(completions) == 2 * len(PATHS)
    assert (
        completions[
            ("scheduler_completions_total", (("path", "waker"), ("transition", "memberships")))
        ]
        == (CONTRACT["completions"]["waker"])
    )
    lateness = families["scheduler_completion_lateness_seconds"][2]
    assert (
        lateness[("scheduler_completion_lateness_seconds_count", (("transition", "memberships"),))]
        == (CONTRACT["lateness"]["count"])
    )


def test_a_transition_removed_during_the_scrape_is_left_out() -> None:
    class Removing(FakeBackend):
        def metrics(self, *, transition: str | None = None) -> dict[str, Any]:
            if transition == "gone":
                raise InvalidInput("no transition named gone")
            return super().metrics(transition=transition)

    backend = Removing(CONTRACT)
    backend.registered = ["meetings", "gone"]
    families = parse(collect_text(backend))
    assert families["scheduler_up"][2] == {("scheduler_up", ()): 1}
    assert set(families["scheduler_jobs"][2]) == {("scheduler_jobs", MEETINGS)}


def test_completions_counter_has_every_path_label() -> None:
    data = copy.deepcopy(CONTRACT)
    del data["completions"]["sweep"]  # a path the backend left out is still reported, as 0
    kind, _, samples = parse(collect_text(FakeBackend(data)))["scheduler_completions"]
    assert kind == "counter"
    assert samples == {
        ("scheduler_completions_total", (("path", path), *MEETINGS)): (
            0 if path == "sweep" else CONTRACT["completions"][path]
        )
        for path in PATHS
    }
    assert set(PATHS) == {"job", "sweep", "waker", "reconcile", "recover", "write"}


def test_lateness_histogram_is_cumulative_with_inf_equal_to_count() -> None:
    kind, _, samples = parse(collect_text(FakeBackend(CONTRACT)))[
        "scheduler_completion_lateness_seconds"
    ]
    assert kind == "histogram"
    name = "scheduler_completion_lateness_seconds"
    buckets = {
        float(dict(labels)["le"]): v for (n, labels), v in samples.items() if n == name + "_bucket"
    }
    assert list(buckets) == [*map(float, BOUNDS), math.inf]
    values = list(buckets.values())
    assert values == sorted(values)  # cumulative
    assert buckets[math.inf] == samples[(name + "_count", MEETINGS)] == 965
    assert buckets[0.5] == 700 and buckets[3600] == 964
    assert samples[(name + "_sum", MEETINGS)] == 5432.25


def test_text_format_spelling() -> None:
    # the sum over every transition (no "transition" key): no label
    text = render_data(CONTRACT).decode()
    assert 'scheduler_completion_lateness_seconds_bucket{le="1.0"} 850.0' in text
    assert 'scheduler_completion_lateness_seconds_bucket{le="+Inf"} 965.0' in text
    assert 'scheduler_completions_total{path="waker"} 900.0' in text
    assert "# TYPE scheduler_webhook_deliveries_total counter" in text
    assert "scheduler_up 1.0" in text
    assert 'transition="' not in text
    # one transition's result: its label
    text = render_data({**CONTRACT, "transition": "memberships"}).decode()
    assert 'scheduler_upcoming_meetings{transition="memberships"} 120.0' in text
    assert "scheduler_reconcile_failed_in_a_row 1.0" in text


METRICS_PAGE = "docs/metrics.md"


def documented_table() -> list[tuple[str, str, str]]:
    """docs/metrics.md's table: (metric as scraped (a counter with _total), its labels as
    written between braces, its type)."""
    rows = re.findall(
        r"^\| `(scheduler_[a-z_]+)(?:\{([a-z,]+)\})?` \| ([a-z]+) \|",
        section(METRICS_PAGE, "Metrics"),
        re.M,
    )
    assert rows, f"{METRICS_PAGE} has no table of metrics"
    return rows


def documented_metrics() -> dict[str, str]:
    """docs/metrics.md's table: each metric as scraped -> its type."""
    return {name: kind for name, _, kind in documented_table()}


def documented_labels() -> dict[str, set[str]]:
    """docs/metrics.md's table: each metric as scraped -> its labels (``le`` left out)."""
    return {name: set(filter(None, labels.split(","))) for name, labels, _ in documented_table()}


SAMPLE_SUFFIXES = {"gauge": [""], "counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}


def test_the_exposition_has_exactly_the_families_the_docs_document() -> None:
    """The text format as Prometheus reads it (prometheus_client's parser, not the collector's
    own tables): every metric docs/metrics.md's table lists, of the type it gives, and no other;
    each family's samples under its own name only; each with a HELP line of its own; and the
    page's example lines are what the command prints."""
    text = render(FakeBackend(CONTRACT)).decode()  # what GET /metrics answers
    families = list(text_string_to_metric_families(text))
    scraped = {f.name + ("_total" if f.type == "counter" else ""): f.type for f in families}
    assert scraped == documented_metrics()
    labels = {
        f.name + ("_total" if f.type == "counter" else ""): {
            label for s in f.samples for label in s.labels if label != "le"
        }
        for f in families
    }
    assert labels == documented_labels()
    for family in families:
        names = {family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type]}
        assert {sample.name for sample in family.samples} == names, family.name
    helps = [f.documentation for f in families]
    assert all(h.strip() and h != f.name for h, f in zip(helps, families, strict=True))
    assert len(set(helps)) == len(helps)  # no family carries another's HELP
    (example,) = blocks(section(METRICS_PAGE, "Metrics"), "console")
    printed = render_data(CONTRACT).decode().splitlines()
    comments = [line for line in example.splitlines() if line.startswith("# ")]
    assert comments and all(line in printed for line in comments), comments


@pytest.mark.parametrize(
    "failure",
    [ConnectionFailed("cannot connect to db.example:5432"), RuntimeError("boom"), None],
    ids=["connection", "unexpected", "malformed"],
)
def test_up_is_zero_and_alone_when_the_backend_fails(
    failure: Exception | None, caplog: pytest.LogCaptureFixture
) -> None:
    data: dict[str, Any] | Exception
    if failure is None:
        data = copy.deepcopy(CONTRACT)
        del data["webhooks"]  # not the contract's shape: not a half-filled scrape either
    else:
        data = failure
    caplog.set_level(logging.WARNING, logger="scheduler_admin")
    families = parse(render(FakeBackend(data)).decode())
    assert families == {"scheduler_up": ("gauge", HELP["scheduler_up"], {("scheduler_up", ()): 0})}
    assert "scheduler metrics unavailable" in caplog.text


def test_a_foreign_exception_is_logged_by_type_only(caplog: pytest.LogCaptureFixture) -> None:
    # a driver's message may quote a password; ours are masked where they are made
    caplog.set_level(logging.WARNING, logger="scheduler_admin")
    render(FakeBackend(RuntimeError("password=hunter2 refused")))
    assert "RuntimeError" in caplog.text and "hunter2" not in caplog.text


def test_null_oldest_pending_is_zero_and_false_flags_are_zero() -> None:
    data = copy.deepcopy(CONTRACT)
    data["webhooks"].update(enabled=False, backlog=0, oldest_pending_seconds=None)
    data["enabled"] = False
    families = parse(render_data(data).decode())
    assert families["scheduler_webhook_oldest_pending_seconds"][2] == {
        ("scheduler_webhook_oldest_pending_seconds", ()): 0
    }
    assert families["scheduler_webhooks_enabled"][2] == {("scheduler_webhooks_enabled", ()): 0}
    assert families["scheduler_enabled"][2] == {("scheduler_enabled", ()): 0}


def test_buckets_that_are_not_cumulative_are_refused() -> None:
    data = copy.deepcopy(CONTRACT)
    data["lateness"]["buckets"][1][1] = 10  # below the bucket before it
    with pytest.raises(ValueError, match="not cumulative"):
        render_data(data)


def test_each_collection_calls_the_backend_again() -> None:
    backend = FakeBackend(CONTRACT)
    collector = SchedulerCollector(backend)
    registry = CollectorRegistry()
    registry.register(collector)
    assert backend.calls == 0
    generate_latest(registry)
    generate_latest(registry)
    assert backend.calls == 2


# -- scheduler-admin metrics ----------------------------------------------------------------


@pytest.fixture
def fake_cli_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeBackend:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT", "SCHEDULER_JOBSTORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    backend = FakeBackend(CONTRACT)
    monkeypatch.setattr(cli, "open_backend", lambda settings: backend)
    return backend


def test_cli_metrics_prints_the_text_format(
    fake_cli_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "metrics")
    assert code == 0, err
    assert out == render_data(CONTRACT).decode()
    families = parse(out)
    assert families["scheduler_upcoming_meetings"][2] == {("scheduler_upcoming_meetings", ()): 120}
    assert fake_cli_backend.calls == 1 and fake_cli_backend.closed == 1
    assert fake_cli_backend.asked == [None]  # every transition's figures, summed


def test_cli_metrics_json_is_the_raw_backend_result(
    fake_cli_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--json", "metrics")
    assert code == 0, err
    assert json.loads(out) == CONTRACT


def test_cli_metrics_failure_is_an_error_line(
    fake_cli_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli_backend.data = ConnectionFailed("cannot connect to db.example:5432", hint="Start it.")
    code, out, err = run(capsys, "metrics")
    assert code == 1 and out == ""
    assert "Error: cannot connect to db.example:5432" in err and "Traceback" not in err
