"""Prometheus metrics: the scheduler's state and counters, read from the database on each scrape.

One call of ``backend.metrics()`` (``scheduler.metrics()`` on PostgreSQL, its twin on SQLite)
per collection gives every family below; nothing is counted in this process, so any number of
application instances (or ``scheduler-admin metrics`` run by cron) report the same figures, and
the counters stay monotonic across restarts (the database keeps them; the reconcile job rolls
the events it deletes into totals).

.. code-block:: python

    from scheduler_admin.metrics import render, SchedulerCollector
    body = render(backend)                 # the text format, as bytes
    registry.register(SchedulerCollector(backend))   # or in a registry of your own

By default a collection reads every registered transition, one
``backend.metrics(transition=name)`` call each (``backend.transitions()`` lists them, meetings
first), and labels each figure with ``transition``, so one scrape tells them apart
(``scheduler_upcoming_meetings{transition="memberships"}`` is that transition's pending rows).
``SchedulerCollector(backend, transition="memberships")`` (``render(backend, transition=...)``)
reads that one alone, under the same label. The scheduler's own state (the reconcile job's runs
in a row, whether webhooks are on) is the same for every transition and carries no label.
:func:`render_data` writes one result already read: labelled with its ``transition`` key when it
has one, unlabelled when it is the sum over every transition (``backend.metrics()``, what
``scheduler-admin metrics`` prints without ``--transition``).

``scheduler_up`` is 1 when the calls worked; when one failed (database down, not migrated), it
is 0 and no other family is reported, so absent series never read as zeros.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString as _float_to_go

from scheduler_admin import config
from scheduler_admin.core import BUILTIN, PATHS, Transition
from scheduler_admin.exceptions import InvalidInput

if TYPE_CHECKING:
    from scheduler_admin.backends.base import Backend

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HELP",
    "ConfiguredSource",
    "MetricsSource",
    "SchedulerCollector",
    "every_transition",
    "families",
    "render",
    "render_data",
    "transition_families",
]

log = logging.getLogger(__name__)

# how prometheus_client writes a bucket's le ("1.0", "+Inf"), so ours read like its histograms
_go_float = cast(Callable[[float], str], _float_to_go)

# The HELP line of every family (the table of docs/metrics.md says the same).
HELP: dict[str, str] = {
    "scheduler_up": "1 when the scheduler's metrics could be read from the database, else 0 "
    "(and no other scheduler_ series is reported)",
    "scheduler_enabled": "1 when the scheduler is enabled (and the transition not paused), 0 "
    "while it is paused",
    "scheduler_upcoming_meetings": "Rows with the transition's pending status now (meetings: "
    "upcoming)",
    "scheduler_jobs": "pg_cron jobs of ours for the transition's rows (the reconcile and sweep "
    "jobs excluded)",
    "scheduler_missing_jobs": "Pending rows without a job with the right schedule "
    "(the reconcile job registers them)",
    "scheduler_orphan_jobs": "Jobs of the transition with no pending row or a wrong schedule "
    "(the reconcile job removes them)",
    "scheduler_overdue_meetings": "Pending rows whose time has passed: 0 except for "
    "a moment; more for minutes means nothing completes them",
    "scheduler_completions": "Rows completed by the scheduler, by path: job (a row's "
    "job run), sweep (the seconds sweep), waker (the application's waker), reconcile, recover "
    "(recover/resume/migration), write (written with a time already past)",
    "scheduler_completion_lateness_seconds": "Seconds from a row's time (a meeting's end "
    "time) to its completion by the scheduler",
    "scheduler_failed_runs": "Failed job runs kept in the run history (pg_cron's "
    "job_run_details, pruned after the history retention): of the transition's jobs; meetings: "
    "of every job of ours",
    "scheduler_retried_runs": "Failed job runs kept in the run history whose work was done "
    "later (the row was completed, or a later run of the same job succeeded)",
    "scheduler_webhook_deliveries": "Completion events delivered to the webhook",
    "scheduler_webhook_failures": "Completion events whose delivery finally failed (permanent "
    "error or attempts exhausted)",
    "scheduler_webhook_attempt_failures": "Webhook delivery attempts that failed (retried "
    "or final)",
    "scheduler_webhook_backlog": "Completion events waiting for webhook delivery",
    "scheduler_webhook_oldest_pending_seconds": "Age in seconds of the oldest completion event "
    "waiting for webhook delivery (0 when none waits)",
    "scheduler_webhooks_enabled": "1 when new completion events are queued for the webhook",
    "scheduler_failing_rows": "Rows whose completion failed (a constraint or a trigger rejects "
    "it), left out until their retry time; every other row is completed (doctor names them)",
    "scheduler_job_horizon_seconds": "The transition's job horizon in seconds: a pending row "
    "gets its job once its time is within it (0: no horizon, every pending row has its job)",
    "scheduler_rows_beyond_horizon": "Pending rows beyond the job horizon: no job yet (the "
    "reconcile job registers each as it enters the horizon)",
    "scheduler_reconcile_skipped_in_a_row": "The reconcile job's last runs skipped in a row "
    "(another recovery held the lock)",
    "scheduler_reconcile_failed_in_a_row": "The reconcile job's last runs failed in a row",
}

# scheduler.metrics() key -> gauge name, for the plain numbers at the top level
GAUGES: dict[str, str] = {
    "enabled": "scheduler_enabled",
    "upcoming_meetings": "scheduler_upcoming_meetings",
    "jobs": "scheduler_jobs",
    "missing_jobs": "scheduler_missing_jobs",
    "orphan_jobs": "scheduler_orphan_jobs",
    "overdue_meetings": "scheduler_overdue_meetings",
    "failed_runs": "scheduler_failed_runs",
    "retried_runs": "scheduler_retried_runs",
}
# scheduler.metrics() keys -> gauge names, 0 when the database does not report them (a schema
# before revision 0009)
OPTIONAL_GAUGES: dict[str, str] = {
    "failing_rows": "scheduler_failing_rows",
    # the job horizon (revision 0011)
    "job_horizon_seconds": "scheduler_job_horizon_seconds",
    "beyond_horizon": "scheduler_rows_beyond_horizon",
    "reconcile_skipped_in_a_row": "scheduler_reconcile_skipped_in_a_row",
    "reconcile_failed_in_a_row": "scheduler_reconcile_failed_in_a_row",
}
# keys of "webhooks" -> counter names (without _total) and gauge names
COUNTERS: dict[str, str] = {
    "delivered": "scheduler_webhook_deliveries",
    "failed": "scheduler_webhook_failures",
    "attempt_failures": "scheduler_webhook_attempt_failures",
}
WEBHOOK_GAUGES: dict[str, str] = {
    "backlog": "scheduler_webhook_backlog",
    "oldest_pending_seconds": "scheduler_webhook_oldest_pending_seconds",
    "enabled": "scheduler_webhooks_enabled",
}


class MetricsSource(Protocol):
    """Anything with ``metrics(transition=...)`` and ``transitions()``: every backend, or
    :class:`ConfiguredSource`."""

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]: ...

    def transitions(self) -> list[Transition]: ...


def every_transition(source: MetricsSource) -> dict[str, dict[str, Any]]:
    """``source.metrics(transition=name)`` of every registered transition, meetings first.

    A transition removed between the listing and its call is left out; the builtin meetings is
    always read (its failure is the source's)."""
    names = [t["name"] for t in source.transitions()]
    if BUILTIN not in names:
        names.insert(0, BUILTIN)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            out[name] = source.metrics(transition=name)
        except InvalidInput:
            if name == BUILTIN:
                raise
            log.info("scheduler metrics: transition %s was removed during the scrape", name)
    return out


class ConfiguredSource:
    """Opens the configured backend for each call and closes it (what a long-running
    application needs: no connection is held between scrapes); :meth:`every_transition` reads
    every transition over one backend.

    ``settings`` is called inside each call, so an invalid configuration is a failed
    scrape (``scheduler_up 0``), not an exception where the source is built.
    """

    def __init__(self, settings: Callable[[], config.Settings]) -> None:
        self._settings = settings

    def _open(self) -> Backend:
        from scheduler_admin.backends import open_backend

        return open_backend(self._settings())

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]:
        backend = self._open()
        try:
            return _read(backend, transition)
        finally:
            backend.close()

    def transitions(self) -> list[Transition]:
        backend = self._open()
        try:
            return backend.transitions()
        finally:
            backend.close()

    def every_transition(self) -> dict[str, dict[str, Any]]:
        """:func:`every_transition` over one backend, opened and closed here."""
        backend = self._open()
        try:
            return every_transition(backend)
        finally:
            backend.close()


def _read(source: MetricsSource, transition: str | None) -> dict[str, Any]:
    """``source.metrics()`` (every transition summed), or of one transition."""
    if transition is None:
        return source.metrics()
    return source.metrics(transition=transition)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if value is None:
        raise ValueError(f"metrics: {what} is missing")
    return float(value)


def _buckets(data: Mapping[str, Any]) -> tuple[list[tuple[str, float]], float]:
    """The lateness histogram's buckets from cumulative ``[[le, count], …]`` and ``count``
    (+Inf), and its ``sum``."""
    lateness = data["lateness"]
    count = _number(lateness["count"], "lateness.count")
    pairs = sorted((float(le), _number(n, "a lateness bucket")) for le, n in lateness["buckets"])
    buckets: list[tuple[str, float]] = []
    previous = 0.0
    for le, n in pairs:
        if n < previous or n > count:
            raise ValueError(f"metrics: lateness buckets are not cumulative at le={le:g}")
        buckets.append((_go_float(le), n))
        previous = n
    buckets.append(("+Inf", count))
    return buckets, _number(lateness["sum"], "lateness.sum")


# families that describe the scheduler as a whole (the same in every transition's result):
# reported once, without the transition label
GLOBAL_GAUGES: dict[str, str] = {
    "reconcile_skipped_in_a_row": "scheduler_reconcile_skipped_in_a_row",
    "reconcile_failed_in_a_row": "scheduler_reconcile_failed_in_a_row",
}
GLOBAL_WEBHOOK_GAUGES: dict[str, str] = {"enabled": "scheduler_webhooks_enabled"}


def _optional(data: Mapping[str, Any], key: str) -> float:
    raw = data.get(key)
    return 0.0 if raw is None else _number(raw, key)


def _webhook_gauge(webhooks: Mapping[str, Any], key: str) -> float:
    raw = webhooks[key]
    # the age of the oldest pending event is null when none is pending
    return 0.0 if raw is None and key == "oldest_pending_seconds" else _number(raw, key)


def _build(results: Mapping[str | None, Mapping[str, Any]]) -> list[Metric]:
    """The families of one or more results of ``metrics()``, keyed by the transition each is of
    (its ``transition`` label), or by None alone (no label: the sum over every transition)."""
    items = list(results.items())
    if not items:
        raise ValueError("metrics: no transition to report")
    labelled = items[0][0] is not None
    if not labelled and len(items) > 1:
        raise ValueError("metrics: only one result may be unlabelled")
    tl = ["transition"] if labelled else []

    def values(t: str | None) -> list[str]:
        return [t] if t is not None else []

    out: list[Metric] = []
    gauge_names = {**GAUGES, **{k: v for k, v in OPTIONAL_GAUGES.items() if k not in GLOBAL_GAUGES}}
    for key, name in gauge_names.items():
        gauge = GaugeMetricFamily(name, HELP[name], labels=tl)
        for t, data in items:
            value = _number(data[key], key) if key in GAUGES else _optional(data, key)
            gauge.add_metric(values(t), value)
        out.append(gauge)
    first = items[0][1]
    for key, name in GLOBAL_GAUGES.items():
        out.append(GaugeMetricFamily(name, HELP[name], value=_optional(first, key)))

    counter = CounterMetricFamily(
        "scheduler_completions", HELP["scheduler_completions"], labels=[*tl, "path"]
    )
    for t, data in items:
        completions = data["completions"]
        # every path of the contract, 0 when none; a path we do not know yet is kept too
        for path in (*PATHS, *sorted(set(completions) - set(PATHS))):
            value = _number(completions.get(path, 0), f"completions.{path}")
            counter.add_metric([*values(t), path], value)
    out.append(counter)
    histogram = HistogramMetricFamily(
        "scheduler_completion_lateness_seconds",
        HELP["scheduler_completion_lateness_seconds"],
        labels=tl,
    )
    for t, data in items:
        buckets, total = _buckets(data)
        histogram.add_metric(values(t), buckets, total)
    out.append(histogram)

    for key, name in COUNTERS.items():
        family = CounterMetricFamily(name, HELP[name], labels=tl)
        for t, data in items:
            family.add_metric(values(t), _number(data["webhooks"][key], f"webhooks.{key}"))
        out.append(family)
    for key, name in WEBHOOK_GAUGES.items():
        if key in GLOBAL_WEBHOOK_GAUGES:
            value = _webhook_gauge(first["webhooks"], key)
            out.append(GaugeMetricFamily(name, HELP[name], value=value))
            continue
        webhook_gauge = GaugeMetricFamily(name, HELP[name], labels=tl)
        for t, data in items:
            webhook_gauge.add_metric(values(t), _webhook_gauge(data["webhooks"], key))
        out.append(webhook_gauge)
    return out


def transition_families(results: Mapping[str, Mapping[str, Any]]) -> list[Metric]:
    """Every family but ``scheduler_up``, from the results of ``metrics(transition=name)`` by
    name (:func:`every_transition`): each figure labelled with its ``transition``, the
    scheduler's own state (the reconcile job's runs in a row, whether webhooks are on) once,
    unlabelled, from the first result.

    Raises ``KeyError``/``ValueError``/``TypeError`` when a result is not of the contract's
    shape.
    """
    return _build({name: data for name, data in results.items()})


def families(data: Mapping[str, Any]) -> list[Metric]:
    """Every family but ``scheduler_up``, from one JSON result of ``scheduler.metrics()``: of one
    transition (it has the key ``transition``) under that label, or the sum over every
    transition (``metrics()`` with no argument) with no ``transition`` label.

    Raises ``KeyError``/``ValueError``/``TypeError`` when ``data`` is not of that shape.
    """
    transition = data.get("transition")
    return _build({None if transition is None else str(transition): data})


def _empty_families() -> Iterator[Metric]:
    for name in (*GAUGES.values(), *OPTIONAL_GAUGES.values()):
        yield GaugeMetricFamily(name, HELP[name])
    yield CounterMetricFamily(
        "scheduler_completions", HELP["scheduler_completions"], labels=["path"]
    )
    yield HistogramMetricFamily(
        "scheduler_completion_lateness_seconds", HELP["scheduler_completion_lateness_seconds"]
    )
    for name in COUNTERS.values():
        yield CounterMetricFamily(name, HELP[name])
    for name in WEBHOOK_GAUGES.values():
        yield GaugeMetricFamily(name, HELP[name])


def _up(value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily("scheduler_up", HELP["scheduler_up"], value=value)


def _describe_failure(exc: BaseException) -> str:
    """A failure in one line with no secret: our errors' messages are masked where they are
    made; a foreign exception (a driver's message may quote a password) shows its type only."""
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) and message else type(exc).__name__


class SchedulerCollector:
    """A prometheus_client collector: each ``collect()`` reads every registered transition
    (:func:`every_transition`: ``source.transitions()`` then one ``source.metrics()`` call per
    transition), or ``transition`` alone when one is given; each figure is labelled with its
    transition.

    A failure of a call (or a result not of the contract's shape) is logged at WARNING
    (``describe`` turns the exception into the logged text) and reported as
    ``scheduler_up 0`` alone.
    """

    def __init__(
        self,
        source: MetricsSource,
        *,
        transition: str | None = None,
        describe: Callable[[BaseException], str] = _describe_failure,
    ) -> None:
        self.source = source
        self.transition = transition
        self._describe_failure = describe

    def describe(self) -> Iterator[Metric]:
        """The families without samples: what a registry reads on ``register()`` (to find
        clashing names), so registering never calls the database."""
        yield _up(0.0)
        yield from _empty_families()

    def _results(self) -> dict[str, dict[str, Any]]:
        if self.transition is not None:
            return {self.transition: self.source.metrics(transition=self.transition)}
        if isinstance(self.source, ConfiguredSource):  # one backend for every call
            return self.source.every_transition()
        return every_transition(self.source)

    def collect(self) -> Iterator[Metric]:
        try:
            result = transition_families(self._results())
        except Exception as exc:
            log.warning("scheduler metrics unavailable: %s", self._describe_failure(exc))
            yield _up(0.0)
            return
        yield _up(1.0)
        yield from result


class _Fixed:
    def __init__(self, result: list[Metric]) -> None:
        self.result = result

    def collect(self) -> Iterator[Metric]:
        yield _up(1.0)
        yield from self.result


def _generate(collector: SchedulerCollector | _Fixed) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def render(
    source: MetricsSource,
    *,
    transition: str | None = None,
    describe: Callable[[BaseException], str] = _describe_failure,
) -> bytes:
    """The text format (``CONTENT_TYPE_LATEST``) of one collection from ``source``: every
    transition, or ``transition`` alone, each figure labelled with its transition (what
    ``GET /metrics`` answers); never raises for a failure of the source (``scheduler_up 0``)."""
    return _generate(SchedulerCollector(source, transition=transition, describe=describe))


def render_data(data: Mapping[str, Any]) -> bytes:
    """The text format of one result of ``backend.metrics()`` already read (``scheduler_up 1``):
    of one transition (its ``transition`` key) under that label, or of every transition summed
    without the label; raises ``KeyError``/``ValueError``/``TypeError`` when it is not of the
    contract's shape."""
    return _generate(_Fixed(families(data)))
