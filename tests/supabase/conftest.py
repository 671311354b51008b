"""Fixtures of the Supabase suite: a second throwaway cluster shaped like a Supabase project.

pg_cron runs in one database per cluster, and this suite needs pg_cron created by a superuser
while migrations run as a role that is not one, so it starts its own cluster (about 2 s; a
container in the container lane) rather than sharing the main suite's. Tests that use it are marked ``postgres``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgrest_adapter import PostgrestAdapter
from skip_helpers import require_or_skip
from supabase_shape import ANON_KEY, DATABASE, SERVICE_KEY, VARIANTS, SupabaseShape, build, reset

from scheduler_admin.testing.cluster import ClusterError
from scheduler_admin.testing.lanes import server_lane, throwaway_server

SHAPE_FIXTURES = {"supabase_cluster", "supa", "rest", "rest_adapter"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SHAPE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session", params=VARIANTS)
def supabase_cluster(request: pytest.FixtureRequest) -> Iterator[SupabaseShape]:
    """The Supabase-shaped cluster, migrated once with `alembic upgrade head` as the migrator,
    in each grant variant (the platform's, then cron.job writable as the install guide makes it).
    It is started in the lane SCHEDULER_TEST_SERVER chooses (local binaries or the container)."""
    try:
        lane = server_lane()
    except ClusterError as exc:
        pytest.fail(str(exc))
    try:
        with throwaway_server(database=DATABASE) as cluster:
            shape = build(cluster, request.param)
            result = shape.alembic("upgrade", "head")
            assert result.returncode == 0, result.stderr
            yield shape
    except ClusterError as exc:
        require_or_skip(f"could not start a throwaway server ({lane} lane): {exc}")


@pytest.fixture
def supa(supabase_cluster: SupabaseShape) -> Iterator[SupabaseShape]:
    """The migrated Supabase-shaped database with no meeting and no job of ours but reconcile."""
    reset(supabase_cluster)
    yield supabase_cluster
    reset(supabase_cluster)


@pytest.fixture(scope="session")
def rest_adapter(supabase_cluster: SupabaseShape) -> Iterator[PostgrestAdapter]:
    """The PostgREST stand-in in front of the Supabase-shaped cluster (schema scheduler exposed)."""
    adapter = PostgrestAdapter(
        supabase_cluster.dsn("authenticator"),
        keys={SERVICE_KEY: "service_role", ANON_KEY: "anon"},
        schemas=("scheduler",),
    )
    with adapter.running():
        yield adapter


@pytest.fixture
def rest(supa: SupabaseShape, rest_adapter: PostgrestAdapter) -> PostgrestAdapter:
    return rest_adapter
