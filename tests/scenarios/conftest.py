"""The scenario suite runs every test once per backend, and a scenario marked ``any_transition``
once per backend and transition (ids ``[postgres-memberships]``):

* backends: "postgres" (the shared throwaway cluster, reset by the ``db`` fixture of
  tests/conftest.py), "sqlite" (a copy of a database file migrated once with alembic) and, for
  the ``any_transition`` scenarios, "supabase" (a second throwaway cluster with Supabase's roles
  and pg_cron grants, migrated by a role that is not a superuser; the application writes as
  ``authenticated``);
* transitions: "meetings" (the builtin one) and "memberships" (``memberships (id bigint
  identity, status, expires_at)``, active -> expired, registered with add_transition).

The other scenarios (schedule/cancel, status words, the meetings' report shapes, events,
webhooks, metrics) are about meetings alone and run on postgres and sqlite (ids ``[postgres]``,
``[sqlite]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_helpers import reconcile_job_inactive, reset
from scenario_adapters import (
    MEETINGS,
    MEMBERSHIPS,
    PG_MEMBERSHIPS,
    SQLITE_MEMBERSHIPS,
    TRANSITIONS,
    Adapter,
    PostgresAdapter,
    SqliteAdapter,
    SupabaseAdapter,
    Transition,
    add_memberships,
)
from skip_helpers import require_or_skip

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.migrate import upgrade
from scheduler_admin.testing.cluster import ClusterError
from scheduler_admin.testing.lanes import throwaway_server
from scheduler_admin.testing.supabase import DATABASE, MIGRATOR, apply_shape

BACKENDS = ("postgres", "sqlite", "supabase")
# Each any_transition scenario runs a second time with a job horizon set (ids ``...-horizon``): one
# that every row of the scenarios is within, so that they must give the same results with the
# horizon's code paths in use (the rows beyond a horizon have scenarios of their own).
HORIZON = "1000 days"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "only_transitions(*names): an any_transition scenario run for these transitions only",
    )
    config.addinivalue_line(
        "markers",
        "known_bug(backend, transition, reason=...): an any_transition scenario expected to fail "
        "(strict) for that backend and transition until the bug is fixed",
    )
    config.addinivalue_line(
        "markers",
        "sets_horizon: an any_transition scenario that sets job horizons of its own (it runs "
        "without the -horizon variant)",
    )
    config.addinivalue_line(
        "markers",
        "any_transition: a scenario run for every transition (meetings, memberships) on every "
        "backend (postgres, sqlite, supabase)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "adapter" not in metafunc.fixturenames:
        return
    postgres = pytest.mark.postgres
    if metafunc.definition.get_closest_marker("any_transition") is None:
        params = [
            pytest.param(("postgres", MEETINGS.name), id="postgres", marks=postgres),
            pytest.param(("sqlite", MEETINGS.name), id="sqlite"),
        ]
    else:
        params = []
        only = metafunc.definition.get_closest_marker("only_transitions")
        for backend in BACKENDS:
            for transition in TRANSITIONS.values():
                if only is not None and transition.name not in only.args:
                    continue
                marks: list[Any] = [] if backend == "sqlite" else [postgres]
                for bug in metafunc.definition.iter_markers("known_bug"):
                    if bug.args == (backend, transition.name):
                        marks.append(pytest.mark.xfail(strict=True, reason=bug.kwargs["reason"]))
                own = metafunc.definition.get_closest_marker("sets_horizon") is not None
                for horizon in (None,) if own else (None, HORIZON):
                    params.append(
                        pytest.param((backend, transition.name, horizon),
                                     id=f"{backend}-{transition.name}" + ("-horizon" if horizon else ""),
                                     marks=marks)
                    )  # fmt: skip
    metafunc.parametrize("adapter", params, indirect=True)


# -- SQLite: one migrated file per transition, copied for each test ---------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario-template") / "template.db"
    upgrade(url=f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def sqlite_memberships_template(sqlite_template: Path) -> Path:
    """The migrated file with the application's table memberships, registered."""
    path = sqlite_template.with_name("memberships.db")
    shutil.copyfile(sqlite_template, path)
    backend = SqliteBackend(f"sqlite:///{path}")
    try:
        with backend.transaction() as conn:
            conn.execute(SQLITE_MEMBERSHIPS)
        add_memberships(backend)
    finally:
        backend.close()
    return path


# -- Supabase: a second cluster, shaped like a Supabase project --------------------------------


class SupabaseCluster:
    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def dsn(self, user: str = "postgres") -> str:
        return str(self.cluster.dsn(DATABASE, user=user))

    def url(self, user: str = MIGRATOR) -> str:
        return str(self.cluster.url(DATABASE, user=user))


@pytest.fixture(scope="session")
def supabase_cluster() -> Iterator[SupabaseCluster]:
    """Supabase's platform grants (cron.job read-only for the migration role: a job is
    registered through cron.schedule, one call each), migrated as the migration role."""
    try:
        with throwaway_server(database=DATABASE) as cluster:
            shape = SupabaseCluster(cluster)
            apply_shape(shape.dsn(), shape.dsn(MIGRATOR), "platform")
            upgrade(url=shape.url().replace("postgresql://", "postgresql+psycopg://", 1))
            yield shape
    except ClusterError as exc:
        require_or_skip(f"could not start a throwaway server for the Supabase shape: {exc}")


# The application's memberships on Supabase: each user sees and writes its own rows; the
# project's default privileges gave the API roles TRIGGER, which registration refuses.
SUPABASE_MEMBERSHIPS = f"""
{PG_MEMBERSHIPS.replace("(id bigint", "(user_id uuid not null default auth.uid(), id bigint")};
alter table public.memberships enable row level security;
create policy own_memberships on public.memberships to authenticated
    using (user_id = auth.uid()) with check (user_id = auth.uid());
revoke trigger on public.memberships from anon, authenticated, service_role;
"""
LEFTOVER_JOBS = "select cron.unschedule(jobid) from cron.job where starts_with(jobname, %s)"
REMOVE_TRANSITIONS = (
    "select scheduler.remove_transition(name) from scheduler.transitions where not builtin"
)


@contextlib.contextmanager
def supabase_adapter(shape: SupabaseCluster, transition: Transition) -> Iterator[SupabaseAdapter]:
    user = str(uuid.uuid4())
    with contextlib.ExitStack() as stack:
        su = stack.enter_context(psycopg.connect(shape.dsn(), autocommit=True))
        owner = stack.enter_context(psycopg.connect(shape.dsn(MIGRATOR), autocommit=True))
        reset(su)
        stack.callback(reset, su)
        stack.enter_context(reconcile_job_inactive(su))
        if transition is MEMBERSHIPS:
            owner.execute(SUPABASE_MEMBERSHIPS)
            stack.callback(owner.execute, "drop table public.memberships")
            # remove_transition unschedules at most 1000 jobs per transaction where cron.job is
            # read-only (scheduler.unschedule_jobs): the jobs beyond that stay behind it
            stack.callback(su.execute, LEFTOVER_JOBS, (MEMBERSHIPS.job_prefix,))
            stack.callback(owner.execute, REMOVE_TRANSITIONS)
        app = stack.enter_context(psycopg.connect(shape.dsn("authenticator"), autocommit=True))
        app.execute("set role authenticated")
        for conn in (app, su):  # rows written behind the triggers' back are the user's too
            conn.execute("select set_config('request.jwt.claim.sub', %s, false)", (user,))
        instance = SupabaseAdapter(shape.url(), transition, app, su)
        stack.callback(instance.close)
        if transition is MEMBERSHIPS:
            add_memberships(instance.backend)
        yield instance


# -- the adapter ------------------------------------------------------------------------------


@pytest.fixture
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Adapter]:
    backend, name, *rest = request.param
    horizon = rest[0] if rest else None
    with _adapter(request, tmp_path, backend, TRANSITIONS[name]) as instance:
        if horizon is not None:
            instance.t = dataclasses.replace(instance.t, horizon=horizon)
            instance.backend.set_job_horizon(horizon)
        yield instance


@contextlib.contextmanager
def _adapter(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, transition: Transition
) -> Iterator[Adapter]:
    if backend == "supabase":
        with supabase_adapter(request.getfixturevalue("supabase_cluster"), transition) as found:
            yield found
        return
    instance: Adapter
    if backend == "postgres":
        db = request.getfixturevalue(
            "db"
        )  # isolation: no meeting, no job of ours, before and after
        server = request.getfixturevalue("migrated")
        if transition is MEMBERSHIPS:
            db.execute(PG_MEMBERSHIPS)
        instance = PostgresAdapter(server.url, transition)
        try:
            if transition is MEMBERSHIPS:
                add_memberships(instance.backend)
            yield instance
        finally:
            instance.close()
            if transition is MEMBERSHIPS:
                db.execute(REMOVE_TRANSITIONS)
                db.execute("drop table public.memberships")
        return
    path = tmp_path / "scheduler.db"
    template = "sqlite_template" if transition is MEETINGS else "sqlite_memberships_template"
    shutil.copyfile(request.getfixturevalue(template), path)
    instance = SqliteAdapter(path, transition)
    yield instance
    instance.close()
