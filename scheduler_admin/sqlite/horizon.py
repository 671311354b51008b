"""The Python twin of ``sql/postgres/46_horizon.sql``: the job horizon (revision 0011).

A pending row gets its job only once its time is within the horizon of its transition (its own,
else the default; table ``scheduler_horizons``, the row ``'*'`` for the default). The triggers
(``sql/sqlite/30_triggers.sql`` and the generated ones, :func:`~scheduler_admin.sqlite.
transitions.beyond_horizon_sql`) register nothing beyond it; the reconcile job registers the rows
that entered it and removes the jobs of rows beyond it (``recovery.repair`` and ``transitions.
repair_transition`` through :func:`job_cutoff`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from scheduler_admin.core import (
    BUILTIN,
    Horizon,
    Job,
    interval_text,
    job_name,
    parse_horizon,
)
from scheduler_admin.sqlite.connection import from_db_time, iso, iso_text
from scheduler_admin.sqlite.functions import horizon_of

DEFAULT = "*"


def job_horizon(conn: sqlite3.Connection, name: str) -> timedelta | None:
    """Twin of scheduler.job_horizon(): the transition's own horizon, else the default, else
    None (no horizon)."""
    return horizon_of(conn, name)


def job_cutoff(conn: sqlite3.Connection, name: str, now: datetime) -> datetime | None:
    """Twin of scheduler.job_cutoff(): now plus the horizon; None without one."""
    horizon = job_horizon(conn, name)
    return None if horizon is None else now + horizon


def beyond(conn: sqlite3.Connection, name: str, now: datetime, time: object) -> bool:
    """Whether a stored time of a row of ``name`` is beyond its horizon (False without one, or
    for a time that cannot be read: repair reports those)."""
    limit = job_cutoff(conn, name, now)
    when = from_db_time(time)
    return limit is not None and when is not None and when > limit


def set_job_horizon(
    conn: sqlite3.Connection, horizon: str | None, transition: str | None, now: datetime
) -> Horizon:
    """Twin of scheduler.set_job_horizon(): the default (no transition) or a transition's own
    (None: none, or for a transition the default). The reconcile job applies it."""
    from scheduler_admin.sqlite import transitions

    value = parse_horizon(horizon)
    name = DEFAULT if transition is None else transition
    if transition is not None:
        transitions.transition_target(conn, transition)  # an unknown name is an error
    if value is None:
        conn.execute("DELETE FROM scheduler_horizons WHERE transition = ?", (name,))
    else:
        conn.execute(
            "INSERT INTO scheduler_horizons (transition, horizon_seconds) VALUES (?, ?) "
            "ON CONFLICT (transition) DO UPDATE SET horizon_seconds = excluded.horizon_seconds",
            (name, int(value.total_seconds())),
        )
    wanted = transition or BUILTIN
    return next(h for h in horizons(conn, now) if h["transition"] == wanted)


def _pending_times(conn: sqlite3.Connection, name: str) -> list[tuple[str, object, str]]:
    """(key, stored time, state) of every pending row of the transition."""
    from scheduler_admin.sqlite import transitions
    from scheduler_admin.sqlite.functions import pending_status

    if name == BUILTIN:
        pending = pending_status(conn)
        return [
            (str(r[0]), r[1], pending)
            for r in conn.execute(
                "SELECT id, end_time FROM meetings WHERE status = ?", (pending,)
            ).fetchall()
        ]
    spec = transitions.spec_of(conn, name)
    state = spec.col(spec.state, "t")
    rows = conn.execute(
        f"SELECT CAST({spec.col(spec.key, 't')} AS TEXT), {spec.col(spec.time, 't')}, "
        f"{state} FROM {spec.qtable} t WHERE {spec.pending(state)}"
    ).fetchall()
    return [(str(r[0]), r[1], str(r[2])) for r in rows]


def _names(conn: sqlite3.Connection) -> list[str]:
    from scheduler_admin.sqlite import transitions

    return [BUILTIN] + [s.name for s in transitions.named_transitions(conn, None)]


def horizons(conn: sqlite3.Connection, now: datetime) -> list[Horizon]:
    """Twin of scheduler.horizons(): each transition's horizon and its pending rows beyond it."""
    out: list[Horizon] = []
    own = {str(r[0]) for r in conn.execute("SELECT transition FROM scheduler_horizons")}
    for name in _names(conn):
        horizon = job_horizon(conn, name)
        times = []
        if horizon is not None:
            limit = now + horizon
            times = [
                t
                for _, stored, _ in _pending_times(conn, name)
                if (t := from_db_time(stored)) is not None and t > limit
            ]
        first = min(times) if times else None
        registration = None if first is None or horizon is None else first - horizon
        out.append(
            Horizon(
                transition=name,
                job_horizon=interval_text(horizon),
                horizon_seconds=None if horizon is None else horizon.total_seconds(),
                own=name in own,
                beyond_horizon=len(times),
                next_beyond=iso(first),
                next_registration=iso(registration),
            )
        )
    return out


def deferred_jobs(conn: sqlite3.Connection, now: datetime, transition: str | None) -> list[Job]:
    """Twin of scheduler.deferred_jobs(), as list_jobs shows them: the pending rows beyond the
    horizon, each with the job it will get and from when (``registered_at``)."""
    from scheduler_admin.sqlite import transitions

    if transition is not None:
        transitions.transition_target(conn, transition)
    result: list[Job] = []
    for name in _names(conn):
        if transition is not None and name != transition:
            continue
        horizon = job_horizon(conn, name)
        if horizon is None:
            continue
        prefix = job_name("") if name == BUILTIN else transitions.spec_of(conn, name).prefix
        for key, stored, state in _pending_times(conn, name):
            end = from_db_time(stored)
            if end is None or end <= now + horizon:
                continue
            minute = end.replace(second=0, microsecond=0)
            fires = minute if minute == end else minute + timedelta(minutes=1)
            result.append(
                Job(
                    meeting_id=key if name == BUILTIN else None,
                    job_id=None,
                    job_name=prefix + key,
                    schedule=f"{fires.minute} {fires.hour} {fires.day} {fires.month} *",
                    next_run=iso(fires),
                    end_time=iso_text(stored),
                    meeting_status=state,
                    active=None,
                    transition=name,
                    key=key,
                    registered_at=iso(end - horizon),
                )
            )
    return result
