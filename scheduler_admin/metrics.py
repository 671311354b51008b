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

By default the figures are of every transition (``backend.metrics()``: the counts summed over
all of them, the health gauges the meetings'); ``SchedulerCollector(backend,
transition="memberships")`` (``render(backend, transition=...)``, ``scheduler-admin metrics
--transition memberships``) reports one transition's, under the same names (its pending rows are
``scheduler_upcoming_meetings``, and so on): scrape each transition as a job or target of its
own to tell them apart.

``scheduler_up`` is 1 when the call worked; when it failed (database down, not migrated), it
is 0 and no other family is reported, so absent series never read as zeros.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, cast

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString as _float_to_go

from scheduler_admin import config
from scheduler_admin.core import PATHS

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HELP",
    "ConfiguredSource",
    "MetricsSource",
    "SchedulerCollector",
    "families",
    "render",
    "render_data",
]

log = logging.getLogger(__name__)

# how prometheus_client writes a bucket's le ("1.0", "+Inf"), so ours read like its histograms
_go_float = cast(Callable[[float], str], _float_to_go)

# The HELP line of every family (the table of docs/metrics.md says the same).
HELP: dict[str, str] = {
    "scheduler_up": "1 when the scheduler's metrics could be read from the database, else 0 "
    "(and no other scheduler_ series is reported)",
    "scheduler_enabled": "1 when the scheduler is enabled, 0 while it is paused",
    "scheduler_upcoming_meetings": "Meetings with the pending status (upcoming) now",
    "scheduler_jobs": "pg_cron jobs of ours for meetings (the reconcile and sweep jobs excluded)",
    "scheduler_missing_jobs": "Upcoming meetings without a job with the right schedule "
    "(the reconcile job registers them)",
    "scheduler_orphan_jobs": "Jobs of ours with no upcoming meeting or a wrong schedule "
    "(the reconcile job removes them)",
    "scheduler_overdue_meetings": "Upcoming meetings whose end time has passed: 0 except for "
    "a moment; more for minutes means nothing completes them",
    "scheduler_completions": "Meetings completed by the scheduler, by path: job (a meeting's "
    "job run), sweep (the seconds sweep), waker (the application's waker), reconcile, recover "
    "(recover/resume/migration), write (written with an end time already past)",
    "scheduler_completion_lateness_seconds": "Seconds from a meeting's end time to its "
    "completion by the scheduler",
    "scheduler_failed_runs": "Failed job runs kept in the run history (pg_cron's "
    "job_run_details, pruned after the history retention)",
    "scheduler_retried_runs": "Failed job runs kept in the run history whose work was done "
    "later (the meeting was completed, or a later run of the same job succeeded)",
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
    """Anything with ``metrics(transition=...)``: every backend, or :class:`ConfiguredSource`."""

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]: ...


def _read(source: MetricsSource, transition: str | None) -> dict[str, Any]:
    """``source.metrics()`` (every transition: the call a scrape always made), or of one
    transition."""
    if transition is None:
        return source.metrics()
    return source.metrics(transition=transition)


class ConfiguredSource:
    """Opens the configured backend for each ``metrics()`` call and closes it (what a
    long-running application needs: no connection is held between scrapes).

    ``settings`` is called inside ``metrics()``, so an invalid configuration is a failed
    scrape (``scheduler_up 0``), not an exception where the source is built.
    """

    def __init__(self, settings: Callable[[], config.Settings]) -> None:
        self._settings = settings

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]:
        from scheduler_admin.backends import open_backend

        backend = open_backend(self._settings())
        try:
            return _read(backend, transition)
        finally:
            backend.close()


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if value is None:
        raise ValueError(f"metrics: {what} is missing")
    return float(value)


def _histogram(data: Mapping[str, Any]) -> HistogramMetricFamily:
    """The lateness histogram from cumulative ``[[le, count], …]``, ``count`` (+Inf), ``sum``."""
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
    return HistogramMetricFamily(
        "scheduler_completion_lateness_seconds",
        HELP["scheduler_completion_lateness_seconds"],
        buckets=buckets,
        sum_value=_number(lateness["sum"], "lateness.sum"),
    )


def families(data: Mapping[str, Any]) -> list[Metric]:
    """Every family but ``scheduler_up``, from the JSON of ``scheduler.metrics()``.

    Raises ``KeyError``/``ValueError``/``TypeError`` when ``data`` is not of that shape.
    """
    out: list[Metric] = []
    for key, name in GAUGES.items():
        out.append(GaugeMetricFamily(name, HELP[name], value=_number(data[key], key)))
    for key, name in OPTIONAL_GAUGES.items():
        raw = data.get(key)
        value = 0.0 if raw is None else _number(raw, key)
        out.append(GaugeMetricFamily(name, HELP[name], value=value))

    completions = data["completions"]
    counter = CounterMetricFamily(
        "scheduler_completions", HELP["scheduler_completions"], labels=["path"]
    )
    # every path of the contract, 0 when none; a path we do not know yet is kept too
    for path in (*PATHS, *sorted(set(completions) - set(PATHS))):
        counter.add_metric([path], _number(completions.get(path, 0), f"completions.{path}"))
    out.append(counter)
    out.append(_histogram(data))

    webhooks = data["webhooks"]
    for key, name in COUNTERS.items():
        value = _number(webhooks[key], f"webhooks.{key}")
        out.append(CounterMetricFamily(name, HELP[name], value=value))
    for key, name in WEBHOOK_GAUGES.items():
        raw = webhooks[key]
        # the age of the oldest pending event is null when none is pending
        value = 0.0 if raw is None and key == "oldest_pending_seconds" else _number(raw, key)
        out.append(GaugeMetricFamily(name, HELP[name], value=value))
    return out


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
    """A prometheus_client collector: each ``collect()`` calls ``source.metrics()`` once (of
    ``transition`` alone when one is given, the same family names).

    A failure of the call (or a result not of the contract's shape) is logged at WARNING
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

    def collect(self) -> Iterator[Metric]:
        try:
            result = families(_read(self.source, self.transition))
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
    """The text format (``CONTENT_TYPE_LATEST``) of one collection from ``source`` (of
    ``transition`` alone when one is given); never raises for a failure of the source
    (``scheduler_up 0``)."""
    return _generate(SchedulerCollector(source, transition=transition, describe=describe))


def render_data(data: Mapping[str, Any]) -> bytes:
    """The text format of a result of ``backend.metrics()`` already read, of every transition
    or of one (the same names: its ``transition`` key is not a family) (``scheduler_up 1``);
    raises ``KeyError``/``ValueError``/``TypeError`` when it is not of the contract's shape."""
    return _generate(_Fixed(families(data)))
