"""``scheduler-admin``: migrate, inspect, recover and repair the meeting status scheduler.

Results go to stdout (a table, or one JSON document with ``--json``); messages go to stderr.
Expected failures print ``Error: …`` (and ``Hint: …``) and exit 1; usage errors exit 2. ``-v``
logs at INFO on stderr, ``-vv`` at DEBUG and prints the traceback of a failure. Whatever the
verbosity, passwords and keys of the configured URLs are masked in every line on stderr.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import click

from scheduler_admin import config
from scheduler_admin.backends import open_backend
from scheduler_admin.backends.base import Backend
from scheduler_admin.core import (
    BUILTIN,
    PATHS,
    Check,
    Event,
    Horizon,
    Job,
    Recovered,
    Run,
    Transition,
    plural,
    require_aware,
)
from scheduler_admin.exceptions import ConfigurationError, InvalidInput, SchedulerError
from scheduler_admin.redact import RedactingFilter, Redactor

UTC = timezone.utc
log = logging.getLogger("scheduler_admin")


@dataclass
class Invocation:
    """One run of the CLI: what ``main`` needs after the command, whatever happened in it."""

    redactor: Redactor = dataclasses.field(default_factory=Redactor)
    verbose: int = 0


@dataclass
class State:
    database_url: str | None
    as_json: bool
    verbose: int
    redactor: Redactor = dataclasses.field(default_factory=Redactor)

    def settings(self) -> config.Settings:
        return config.resolve(self.database_url)

    @contextmanager
    def backend(self) -> Iterator[Backend]:
        settings = self.settings()
        log.info("using %s (from %s)", settings.display, settings.source)
        backend = open_backend(settings)
        try:
            yield backend
        finally:
            backend.close()


def emit(state: State, data: Any, human: Callable[[], str]) -> None:
    if state.as_json:
        # indented for a person at a terminal; compact for programs (100,000 jobs: 33 MB indented)
        indent = 2 if sys.stdout.isatty() else None
        click.echo(json.dumps(data, indent=indent, default=str))
    else:
        click.echo(human())


# -- formatting -----------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def short_time(value: str | None) -> str | None:
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def until(value: str | None, now: datetime) -> str | None:
    if not value:
        return None
    seconds = int((datetime.fromisoformat(value) - now).total_seconds())
    if seconds < 0:
        return "due"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"in {days}d {hours}h"
    if hours:
        return f"in {hours}h {minutes}m"
    return f"in {minutes}m {secs:02d}s"


def other_transitions(rows: Sequence[Job] | Sequence[Run]) -> bool:
    """Whether some job or run serves a transition other than meetings: only then do the tables
    show a TRANSITION column (a meetings-only database prints what it always printed)."""
    return any(r.get("transition", BUILTIN) != BUILTIN for r in rows)


def jobs_table(jobs: list[Job]) -> str:
    """The jobs, then one line per transition counting its pending rows beyond the job horizon
    (``--json`` lists each of them: ``job_id`` null, ``registered_at`` its time minus the
    horizon)."""
    deferred = [j for j in jobs if j.get("registered_at")]
    jobs = [j for j in jobs if not j.get("registered_at")]
    footer = ""
    for name in dict.fromkeys(j["transition"] for j in deferred):
        group = [j for j in deferred if j["transition"] == name]
        first = min(str(j["registered_at"]) for j in group)
        footer += (
            f"\n{plural(len(group), 'pending row')} of {name} beyond the job horizon: no job yet "
            f"(the first gets its job at {short_time(first)} UTC; --json lists them)"
        )
    if not jobs:
        return "no jobs" + footer
    now = datetime.now(UTC)
    several = other_transitions(jobs)
    rows = [
        (
            *((j.get("transition", BUILTIN),) if several else ()),
            j["job_name"],
            j["schedule"],
            short_time(j["next_run"]),
            until(j["next_run"], now),
            short_time(j["end_time"]),
            # a job whose row is gone has a key (a meeting id) but no state
            j["meeting_status"] or ("orphan" if j.get("key", j["meeting_id"]) else None),
            "yes" if j["active"] else "no",
        )
        for j in jobs
    ]
    head = (
        *(("TRANSITION",) if several else ()),
        "JOB",
        "SCHEDULE",
        "NEXT RUN (UTC)",
        "IN",
        # another transition's time column is not an end time
        "TIME (UTC)" if several else "END TIME (UTC)",
        "STATUS",
        "ACTIVE",
    )
    return table(head, rows) + f"\n{plural(len(jobs), 'job')}" + footer


def _count_lines(counts: Mapping[str, Any]) -> list[str]:
    """The counts of a recovery (of meetings or of another transition), one per line."""
    lines = [
        f"  jobs scheduled      {counts['jobs_scheduled']}",
        f"  jobs already there  {counts['jobs_already_exist']}",
        f"  overdue completed   {counts['overdue_completed']}",
        f"  orphans removed     {counts['orphans_removed']}",
    ]
    if counts.get("beyond_horizon"):
        lines.append(f"  beyond the horizon  {counts['beyond_horizon']} (no job yet)")
    errors = counts.get("errors")
    if errors is not None:
        lines.append(f"  errors              {len(errors)}")
        # a meeting's error names the meeting, another transition's its row's key
        lines += [f"    {e.get('meeting_id', e.get('key'))}: {e.get('error')}" for e in errors]
    return lines


def report_text(report: Recovered) -> str:
    """A recover (or resume) report: of meetings, with the other transitions' counts under it
    and the transitions skipped because paused; or of one other transition."""
    data: Mapping[str, Any] = report
    if "total_meetings" in data:
        read = plural(data["total_meetings"], "upcoming meeting")
    else:
        read = f"transition {data['transition']}, {plural(data['total'], 'pending row')}"
    head = f"would recover {read}:" if data.get("dry_run") else f"recovery of {read}:"
    lines = [head, *_count_lines(data)]
    for name, counts in (data.get("transitions") or {}).items():
        lines.append(f"transition {name}, {plural(counts['total'], 'pending row')}:")
        lines += _count_lines(counts)
    paused = data.get("paused_transitions") or []
    if paused:
        lines.append(f"skipped, paused: {', '.join(f'transition {n}' for n in paused)}")
    lines.append("ok" if data["success"] else "completed with errors")
    return "\n".join(lines)


def runs_table(runs: list[Run]) -> str:
    if not runs:
        return "no runs"
    several = other_transitions(runs)
    rows = [
        (
            *((r.get("transition", BUILTIN),) if several else ()),
            r["run_id"],
            r["job_name"],
            r["status"],
            short_time(r["start_time"]),
            short_time(r["end_time"]),
            r["return_message"],
        )
        for r in runs
    ]
    head = ("RUN", "JOB", "STATUS", "START (UTC)", "END (UTC)", "MESSAGE")
    return table((*(("TRANSITION",) if several else ()), *head), rows)


def duration(seconds: float | None) -> str | None:
    """``0.42 s``, ``12.3 s``, ``2m 05s``, ``3h 20m``: how late a completion was."""
    if seconds is None:
        return None
    if abs(seconds) < 10:
        return f"{seconds:.2f} s"
    if abs(seconds) < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    sign, whole = ("-" if whole < 0 else ""), abs(whole)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m {secs:02d}s"


def events_table(events: list[Event]) -> str:
    """The events; a TRANSITION column, and another transition's row's key where a meeting's
    id is, only when some event is not a meeting's (a meetings-only database prints what it
    always printed)."""
    if not events:
        return "no completion events"
    several = any(e.get("transition", BUILTIN) != BUILTIN for e in events)
    rows = [
        (
            *((e.get("transition", BUILTIN),) if several else ()),
            short_time(e["completed_at"]),
            e["meeting_id"] if e["meeting_id"] is not None else e.get("key"),
            e["path"],
            duration(e["lateness_seconds"]),
            e["delivery"] or "off",
            e["attempts"],
        )
        for e in events
    ]
    head = (
        *(("TRANSITION",) if several else ()),
        "COMPLETED AT (UTC)",
        # another transition's row has a key, not a meeting id
        "KEY" if several else "MEETING",
        "PATH",
        "LATENESS",
        "DELIVERY",
        "ATTEMPTS",
    )
    return table(head, rows) + f"\n{plural(len(events), 'event')}"


def transition_words(t: Transition) -> str:
    """``active, trial → expired``: the states a transition applies to and the state it sets."""
    return f"{', '.join(t['from_states'])} → {t['to_state']}"


def transitions_table(rows: list[Transition]) -> str:
    if not rows:
        return "no transitions"
    cells = [
        (
            t["name"] + (" (builtin)" if t["builtin"] else ""),
            t["table_name"],
            t["key_column"],
            t["time_column"],
            t["state_column"],
            transition_words(t),
            t["job_prefix"],
            t["pending_rows"],
            t["jobs"],
            "yes" if t.get("paused") else "no",
        )
        for t in rows
    ]
    head = (
        "NAME",
        "TABLE",
        "KEY",
        "TIME",
        "STATE",
        "FROM → TO",
        "JOB PREFIX",
        "PENDING",
        "JOBS",
        "PAUSED",
    )
    return table(head, cells) + f"\n{plural(len(rows), 'transition')}"


def checks_text(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"[{'ok' if c['ok'] else 'FAIL'}] {c['name']}: {c['detail']}")
        if c["fix"]:
            lines.append(f"       fix: {c['fix']}")
    return "\n".join(lines)


def parse_end_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise InvalidInput(
            f"cannot parse end time {text!r}",
            hint="Use ISO 8601 with a time zone, e.g. 2026-12-01T15:30:00Z or "
            "2026-12-01T17:30:00+02:00.",
        ) from None
    return require_aware(value)


def transition_label(transition: str | None) -> str:
    """What an operation applied to: ``the whole scheduler`` or ``transition memberships``."""
    return "the whole scheduler" if transition is None else f"transition {transition}"


# -- commands -------------------------------------------------------------------------------

transition_option = click.option(
    "--transition",
    metavar="NAME",
    help="Only this registered transition (scheduler-admin transitions list); default: all.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    metavar="URL",
    help="postgresql://… or sqlite:///…; default from SCHEDULER_DATABASE_URL, DATABASE_URL, "
    "ENVIRONMENT=prod with SUPABASE_DB_URL, SCHEDULER_JOBSTORE_URL, then "
    "sqlite:///scheduler_jobs.db.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Logging on stderr: -v info, -vv debug and the traceback of a failure.",
)
@click.version_option(package_name="scheduler-admin")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, as_json: bool, verbose: int) -> None:
    """Meeting status scheduler: every upcoming meeting becomes done when it ends."""
    run = ctx.obj if isinstance(ctx.obj, Invocation) else Invocation()
    run.verbose = verbose
    run.redactor.update(Redactor.from_environment(os.environ, urls=[database_url]))
    ctx.obj = State(database_url, as_json, verbose, run.redactor)
    # Our own handler (not basicConfig, which does nothing when the root logger already has
    # one): every line it writes is redacted, driver and library loggers included.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(run.redactor))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(level)

    ctx.call_on_close(restore)


@cli.command("list-jobs")
@transition_option
@click.pass_obj
def list_jobs(state: State, transition: str | None) -> None:
    """List the jobs of ours: one per upcoming meeting and per pending row of every other
    transition, plus the reconcile job."""
    with state.backend() as backend:
        jobs = backend.list_jobs(transition=transition)
    emit(state, jobs, lambda: jobs_table(jobs))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@transition_option
@click.pass_obj
def recover(state: State, dry_run: bool, transition: str | None) -> None:
    """Re-run the registration for every upcoming meeting and pending row (start-up recovery)."""
    with state.backend() as backend:
        report = backend.recover(dry_run=dry_run, transition=transition)
    emit(state, report, lambda: report_text(report))
    if not report["success"]:
        sys.exit(1)


@cli.command()
@click.option("--failed", is_flag=True, help="Only failed runs.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@transition_option
@click.pass_obj
def history(state: State, failed: bool, limit: int, transition: str | None) -> None:
    """Recent runs of our jobs, newest first."""
    with state.backend() as backend:
        runs = backend.history(failed_only=failed, limit=limit, transition=transition)
    emit(state, runs, lambda: runs_table(runs))


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--path", type=click.Choice(PATHS), help="Only completions by this path.")
@transition_option
@click.pass_obj
def events(state: State, limit: int, path: str | None, transition: str | None) -> None:
    """Recent completion events, newest first: when and how each meeting (or another
    transition's row) was completed, how late, and its webhook delivery (off: webhooks were off
    when it completed)."""
    with state.backend() as backend:
        rows = backend.events(limit=limit, path=path, transition=transition)
    emit(state, rows, lambda: events_table(rows))


@cli.command()
@transition_option
@click.pass_obj
def doctor(state: State, transition: str | None) -> None:
    """Check pg_cron, triggers, reconcile job, missing jobs, failures; exit 1 on a problem."""
    from scheduler_admin.backends.checks import configuration_check

    with state.backend() as backend:
        checks = backend.doctor(transition=transition)
    checks = [configuration_check(state.settings()), *checks]
    healthy = all(c["ok"] for c in checks)
    emit(state, {"ok": healthy, "checks": checks}, lambda: checks_text(checks))
    if not healthy:
        click.echo("Error: the scheduler is not healthy (see the fixes above)", err=True)
        sys.exit(1)


@cli.command()
@click.argument("meeting_id")
@click.argument("end_time")
@click.pass_obj
def schedule(state: State, meeting_id: str, end_time: str) -> None:
    """Set the end time of an upcoming meeting and make sure its job exists."""
    when = parse_end_time(end_time)
    with state.backend() as backend:
        result = backend.schedule(meeting_id, when)
    job = result.get("job")
    emit(
        state,
        result,
        lambda: (
            f"meeting {result['meeting_id']}: {result['status']}"
            + (f", job {job['job_name']} at {job['schedule']} (UTC)" if job else ", no job")
        ),
    )


@cli.command()
@click.argument("meeting_id")
@click.pass_obj
def cancel(state: State, meeting_id: str) -> None:
    """Cancel an upcoming meeting, which removes its job."""
    with state.backend() as backend:
        result = backend.cancel(meeting_id)
    emit(
        state,
        result,
        lambda: (
            f"meeting {result['meeting_id']}: {result['status']}, "
            f"{plural(result['jobs_removed'], 'job')} removed"
        ),
    )


@cli.command()
@transition_option
@click.pass_obj
def pause(state: State, transition: str | None) -> None:
    """Pause (the whole scheduler, or one transition): triggers register no job and jobs change
    nothing until resume."""
    with state.backend() as backend:
        result = backend.pause(transition=transition)
    emit(state, result, lambda: f"paused {transition_label(transition)}")


@cli.command()
@transition_option
@click.pass_obj
def resume(state: State, transition: str | None) -> None:
    """Resume (the whole scheduler and every transition, or one transition) and run its
    recovery; exit 1 when the recovery had errors."""
    with state.backend() as backend:
        report = backend.resume(transition=transition)
    emit(state, report, lambda: f"resumed {transition_label(transition)}\n" + report_text(report))
    if not report["success"]:
        sys.exit(1)


def horizons_text(rows: list[Horizon]) -> str:
    lines = []
    for h in rows:
        what = h["job_horizon"] or "none (every pending row has its job)"
        own = "" if h["own"] or h["transition"] == BUILTIN else " (the default)"
        line = f"{h['transition']}: {what}{own if h['job_horizon'] else ''}"
        if h["beyond_horizon"]:
            line += (
                f"; {plural(h['beyond_horizon'], 'pending row')} beyond it, the first gets its "
                f"job at {short_time(h['next_registration'])} UTC"
            )
        lines.append(line)
    return "\n".join(lines)


@cli.command("horizon")
@click.argument("value", required=False, metavar="[DURATION|none]")
@click.option(
    "--transition",
    metavar="NAME",
    help="Set this transition's own horizon (none: back to the default); default: the default "
    "of every transition.",
)
@click.pass_obj
def horizon_command(state: State, value: str | None, transition: str | None) -> None:
    """Show the job horizons, or set one: a pending row gets its pg_cron job only once its time
    is within the horizon (e.g. 1d, 36h, 90m; at least 15 minutes; none for none). The
    reconcile job registers the rows entering it and, within a minute, applies a change."""
    with state.backend() as backend:
        if value is None:
            rows = backend.horizons()
            emit(state, rows, lambda: horizons_text(rows))
            return
        result = backend.set_job_horizon(value, transition=transition)
    emit(
        state,
        result,
        lambda: (
            f"job horizon of {transition or 'every transition (the default)'}: "
            f"{result['job_horizon'] or 'none'}\n"
            "the reconcile job applies it within a minute (scheduler-admin recover: now)"
        ),
    )


@cli.group("transitions")
def transitions_group() -> None:
    """Timed transitions: rows of a table that change state at a time they carry.

    Each registered transition keeps one job per pending row, as the scheduler does for meetings
    (the builtin transition `meetings`, created by the migrations).
    """


@transitions_group.command("list")
@click.pass_obj
def transitions_list(state: State) -> None:
    """List the registered transitions, meetings (builtin) first, with pending rows and jobs."""
    with state.backend() as backend:
        rows = backend.transitions()
    emit(state, rows, lambda: transitions_table(rows))


def _state_word(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A state word is never blank; repeated ``--from`` words count once, in their order."""
    words = list(value) if isinstance(value, tuple) else [value]
    if any(not w.strip() for w in words):
        raise click.BadParameter("a state cannot be blank", ctx=ctx, param=param)
    return tuple(dict.fromkeys(value)) if isinstance(value, tuple) else value


@transitions_group.command("add")
@click.argument("name")
@click.option(
    "--table",
    "table_name",
    required=True,
    metavar="TABLE",
    help="The table (schema.table on PostgreSQL).",
)
@click.option(
    "--key",
    "key_column",
    required=True,
    metavar="COL",
    help="Its unique key column (uuid, bigint, integer, text, varchar).",
)
@click.option(
    "--time",
    "time_column",
    required=True,
    metavar="COL",
    help="The column holding when a row changes state (timestamptz).",
)
@click.option(
    "--state",
    "state_column",
    required=True,
    metavar="COL",
    help="The state column (text or varchar).",
)
@click.option(
    "--from",
    "from_states",
    required=True,
    multiple=True,
    metavar="STATE",
    callback=_state_word,
    help="A state the transition applies to (repeat for several; at least one).",
)
@click.option(
    "--to",
    "to_state",
    required=True,
    metavar="STATE",
    callback=_state_word,
    help="The state a row gets at its time.",
)
@click.option(
    "--prefix",
    "job_prefix",
    metavar="P",
    help="Job name prefix (default: NAME with _ as -, then -status-).",
)
@click.pass_obj
def transitions_add(
    state: State,
    name: str,
    table_name: str,
    key_column: str,
    time_column: str,
    state_column: str,
    from_states: tuple[str, ...],
    to_state: str,
    job_prefix: str | None,
) -> None:
    """Register transition NAME: rows of TABLE in a --from state get the --to state at their
    --time. Installs its triggers on TABLE, completes the rows already due and registers one job
    per pending row."""
    if to_state in from_states:
        raise click.BadParameter(
            f"{to_state!r} is also a --from state: a row must leave the states the transition "
            "applies to",
            param_hint="'--to'",
        )
    with state.backend() as backend:
        result = backend.add_transition(
            name,
            table=table_name,
            key_column=key_column,
            time_column=time_column,
            state_column=state_column,
            from_states=list(from_states),
            to_state=to_state,
            job_prefix=job_prefix,
        )
    emit(
        state,
        result,
        lambda: (
            f"transition {result['name']} registered on {result['table']}: "
            f"{', '.join(from_states)} → {to_state} at {time_column}\n"
            f"  jobs registered  {result['jobs_registered']} "
            f"({result['job_prefix']}<{key_column}>)\n"
            f"  rows completed   {result['completed']} (already due)"
        ),
    )


@transitions_group.command("remove")
@click.argument("name")
@click.pass_obj
def transitions_remove(state: State, name: str) -> None:
    """Remove transition NAME: its triggers and jobs go, the rows of its table stay as they are."""
    with state.backend() as backend:
        result = backend.remove_transition(name)
    emit(
        state,
        result,
        lambda: (
            f"transition {result['name']} removed: {plural(result['jobs_removed'], 'job')} "
            "removed, rows unchanged"
            + (
                f"; {plural(result['jobs_left'], 'job')} left, removed by the reconcile job "
                "within a minute (at most 1000 per transaction where cron.unschedule is called "
                "per job)"
                if result.get("jobs_left")
                else ""
            )
        ),
    )


@cli.command("metrics")
@transition_option
@click.pass_obj
def metrics_command(state: State, transition: str | None) -> None:
    """Print the scheduler's metrics in Prometheus text format (--json: backend.metrics()).

    With --transition, the figures of that transition alone, under the same names."""
    with state.backend() as backend:
        data = backend.metrics(transition=transition)
    if state.as_json:
        emit(state, data, lambda: "")
        return
    from scheduler_admin.metrics import render_data

    # the text format as prometheus_client writes it (its last line ends with a newline)
    click.echo(render_data(data).decode("utf-8"), nl=False)


@cli.command()
@click.argument("revision", default="head")
@click.pass_obj
def migrate(state: State, revision: str) -> None:
    """Run the packaged alembic migrations up to REVISION (default head)."""
    from scheduler_admin import migrate as migrations

    settings = state.settings()
    if settings.url is None:
        raise ConfigurationError(
            "migrations need a direct database connection, not the Supabase REST API",
            hint="Set SUPABASE_DB_URL (or --database-url) to the connection string.",
        )
    click.echo(f"migrating {settings.display} to {revision}", err=True)
    try:
        migrations.upgrade(revision, url=config.sqlalchemy_url(settings.url))
    except SchedulerError:
        raise
    except Exception as exc:
        raise migration_error(exc, settings, state.redactor) from exc
    emit(state, {"database": settings.display, "revision": revision}, lambda: f"at {revision}")


@cli.command("sql")
@click.option(
    "--from",
    "start",
    metavar="REV",
    help="The revision the database is at (default: base, an unmigrated database; with "
    "--downgrade: head).",
)
@click.option(
    "--to",
    "end",
    metavar="REV",
    help="The revision to reach (default: head; with --downgrade: base).",
)
@click.option("--downgrade", is_flag=True, help="Print the downgrade instead of the upgrade.")
@click.option(
    "--pending-status",
    envvar="SCHEDULER_PENDING_STATUS",
    metavar="WORD",
    help="The status of meetings that get a job (default: upcoming, or what the database has).",
)
@click.option(
    "--done-status",
    envvar="SCHEDULER_DONE_STATUS",
    metavar="WORD",
    help="The status a meeting gets at its end time (default: done).",
)
@click.option(
    "--cancelled-status",
    envvar="SCHEDULER_CANCELLED_STATUS",
    metavar="WORD",
    help="The status `cancel` sets (default: cancelled).",
)
def sql_script(
    start: str | None,
    end: str | None,
    downgrade: bool,
    pending_status: str | None,
    done_status: str | None,
    cancelled_status: str | None,
) -> None:
    """Print the migration as one plain SQL script on stdout, for `supabase db push` or psql.

    The script does what `alembic upgrade` does on PostgreSQL, in one transaction, and records
    the revision in scheduler.alembic_version as alembic does. Save it as
    supabase/migrations/<timestamp>_scheduler.sql. It needs no database connection.
    """
    from scheduler_admin.migration_sql import migration_sql

    if downgrade:
        script = migration_sql(start=start or "head", end=end or "base", downgrade=True)
    else:
        statuses = {
            "pending_status": pending_status or "",
            "done_status": done_status or "",
            "cancelled_status": cancelled_status or "",
        }
        script = migration_sql(start=start, end=end or "head", downgrade=False, statuses=statuses)
    # the files' bytes as they are, whatever the platform's newline or the terminal's encoding
    sys.stdout.flush()
    sys.stdout.buffer.write(script.encode("utf-8"))
    sys.stdout.buffer.flush()


def migration_error(
    exc: Exception, settings: config.Settings, redactor: Redactor
) -> SchedulerError:
    import psycopg
    import sqlalchemy.exc

    from scheduler_admin.backends.postgres import connection_error, translate

    redactor.update(settings.redactor())
    orig = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    if isinstance(orig, psycopg.OperationalError) and isinstance(
        exc, sqlalchemy.exc.OperationalError
    ):
        return connection_error(orig, settings.display, redactor)
    if isinstance(orig, psycopg.Error):
        error = translate(orig, settings.display)
        return SchedulerError(f"migration failed: {redactor(error.message)}", hint=error.hint)
    return SchedulerError(
        f"migration failed: {redactor(str(orig))}",
        hint="Run again with -vv for the traceback; `scheduler-admin sql` prints the migration's "
        "SQL without connecting.",
    )


@cli.command()
@click.option("--once", is_flag=True, help="Run one tick now and exit.")
@click.pass_obj
def worker(state: State, once: bool) -> None:
    """Run the emulated cron worker (SQLite only) in the foreground until Ctrl-C or SIGTERM."""
    settings = state.settings()
    if settings.backend != "sqlite":
        raise InvalidInput(
            "the worker is for SQLite only: on PostgreSQL, pg_cron runs the jobs",
            hint="Use `scheduler-admin list-jobs` and `history` to watch them.",
        )
    if not settings.enabled:
        click.echo("ENABLE_MEETING_STATUS_UPDATES=false: the worker does not run", err=True)
        return
    from scheduler_admin.sqlite.worker import CronWorker

    assert settings.url is not None
    cron = CronWorker(settings.url)
    if once:
        result = cron.tick()
        data = dataclasses.asdict(result)
        emit(
            state,
            data,
            lambda: (
                f"tick {result.minute:%Y-%m-%d %H:%M} UTC: "
                + (
                    "already run"
                    if result.skipped
                    else f"{len(result.runs)} runs"
                    + "".join(
                        f"\n  {r.job_name}: {r.status} {r.return_message}" for r in result.runs
                    )
                )
            ),
        )
        return
    click.echo(f"worker running on {settings.display}; Ctrl-C to stop", err=True)
    cron.run_forever()
    click.echo("worker stopped", err=True)


def completed_text(count: int, transition: str | None) -> str:
    """What a waker completed: ``3 rows completed`` (of every transition, meetings included),
    ``3 meetings completed``, or ``transition memberships: 3 rows completed``."""
    if transition is None:
        return f"{plural(count, 'row')} completed"
    if transition == BUILTIN:
        return f"{plural(count, 'meeting')} completed"
    return f"transition {transition}: {plural(count, 'row')} completed"


@cli.command("waker")
@click.option(
    "--once", is_flag=True, help="Complete what is due now, print the next end time, exit."
)
@transition_option
@click.pass_obj
def waker_command(state: State, once: bool, transition: str | None) -> None:
    """Run the waker in the foreground until Ctrl-C or SIGTERM: each meeting (and each pending
    row of the other transitions) becomes done within a second of its end (PostgreSQL: LISTEN;
    Supabase REST and SQLite: a short re-poll)."""
    settings = state.settings()
    if not settings.enabled:
        click.echo("ENABLE_MEETING_STATUS_UPDATES=false: the waker does not run", err=True)
        return
    from scheduler_admin.waker import Waker

    waker = Waker.from_settings(settings, transition=transition)
    if once:
        try:
            result = waker.run_once()
        finally:
            waker.source.close()
        emit(
            state,
            dict(result),
            lambda: (
                f"{completed_text(result['completed'], transition)}; "
                + (
                    f"{'the scheduler' if transition is None else transition_label(transition)}"
                    " is paused"
                    if result["paused"]
                    else f"next end time {result['next_end_time'] or 'none'}"
                )
            ),
        )
        return
    click.echo(
        f"waker running on {settings.display}"
        + ("" if transition is None else f" for {transition_label(transition)}")
        + "; Ctrl-C to stop",
        err=True,
    )
    waker.run_forever()
    click.echo(f"waker stopped ({completed_text(waker.completed, transition)})", err=True)


@cli.command("webhooks")
@click.option("--once", is_flag=True, help="Deliver the events due now, print the counts, exit.")
@click.pass_obj
def webhooks_command(state: State, once: bool) -> None:
    """Run the webhook dispatcher in the foreground until Ctrl-C or SIGTERM: each completion
    event is POSTed to SCHEDULER_WEBHOOK_URL, retried with back-off (needs SCHEDULER_WEBHOOK_URL;
    starting it turns webhooks on: new events are queued for delivery)."""
    settings = state.settings()
    if settings.webhook is None:
        raise ConfigurationError(
            "SCHEDULER_WEBHOOK_URL is not set: there is nowhere to deliver the events",
            hint="Set SCHEDULER_WEBHOOK_URL to the https:// URL that receives them (and "
            "SCHEDULER_WEBHOOK_SECRET to sign them); see docs/webhooks.md.",
        )
    if not settings.enabled:
        click.echo(
            "ENABLE_MEETING_STATUS_UPDATES=false: the webhook dispatcher does not run", err=True
        )
        return
    from scheduler_admin.webhooks import Dispatcher

    state.redactor.update(settings.redactor())
    dispatcher = Dispatcher.from_settings(settings)
    if once:
        try:
            counts = dispatcher.run_once()
        finally:
            dispatcher.close()
        emit(state, counts.as_dict(), lambda: counts_text(counts.as_dict()))
        return
    click.echo(
        f"webhook dispatcher delivering to {dispatcher.display} from {settings.display}; "
        "Ctrl-C to stop",
        err=True,
    )
    dispatcher.run_forever()
    click.echo(f"webhook dispatcher stopped ({counts_text(dispatcher.totals.as_dict())})", err=True)


def counts_text(counts: dict[str, int]) -> str:
    text = (
        f"{plural(counts['claimed'], 'event')} claimed: {counts['delivered']} delivered, "
        f"{counts['retried']} to retry, {counts['failed']} failed"
    )
    if counts["superseded"]:
        text += f", {counts['superseded']} already settled"
    return text


def _url_options(args: Sequence[str]) -> list[str]:
    """The values given to ``--database-url`` in ``args`` (secrets even if the run fails early)."""
    urls = []
    for i, arg in enumerate(args):
        if arg == "--database-url" and i + 1 < len(args):
            urls.append(args[i + 1])
        elif arg.startswith("--database-url="):
            urls.append(arg.split("=", 1)[1])
    return urls


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script.

    Every line written to stderr here goes through the run's redactor: a usage error may quote
    an argument, an error message or a traceback may quote a driver's message.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    run = Invocation(Redactor.from_environment(os.environ, urls=_url_options(args)))

    def say(text: str, *, shapes: bool = True) -> None:
        click.echo(run.redactor(text, shapes=shapes), err=True)

    try:
        cli.main(args=args, standalone_mode=False, obj=run)
    except click.exceptions.Abort:
        say("Aborted")
        sys.exit(1)
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)
        say(shown.getvalue().rstrip("\n"))
        sys.exit(exc.exit_code)
    except SchedulerError as exc:
        if run.verbose > 1:
            say(traceback.format_exc().rstrip("\n"))
        say(f"Error: {exc.message}")
        if exc.hint:
            say(f"Hint: {exc.hint}", shapes=False)
        sys.exit(1)
    except Exception as exc:  # a failure nobody foresaw: still no traceback without -vv
        if run.verbose > 1:
            say(traceback.format_exc().rstrip("\n"))
        say(f"Error: unexpected failure: {type(exc).__name__}: {exc}")
        say(
            "Hint: run again with -vv for the traceback; this is a bug of scheduler-admin, "
            "please report it."
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
