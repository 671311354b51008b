"""Which server the tests start when SCHEDULER_TEST_SERVER does not say: the DSN, the local
binaries, then the container."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler_admin.testing import container, lanes
from scheduler_admin.testing.cluster import ClusterError


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("SCHEDULER_TEST_SERVER", "SCHEDULER_TEST_DSN"):
        monkeypatch.delenv(name, raising=False)
    lanes._default_lane.cache_clear()
    yield monkeypatch
    lanes._default_lane.cache_clear()


def machine(
    monkeypatch: pytest.MonkeyPatch, *, binaries: bool, pg_cron: bool, docker: bool
) -> None:
    monkeypatch.setattr(lanes, "find_bindir", lambda: Path("/pg/bin") if binaries else None)
    monkeypatch.setattr(lanes, "pg_cron_available", lambda bindir: pg_cron)
    monkeypatch.setattr(container, "container_lane_available", lambda: docker)


@pytest.mark.parametrize(
    ("binaries", "pg_cron", "docker", "lane"),
    [
        (True, True, True, "local"),
        (True, False, True, "container"),
        (False, False, True, "container"),
        (False, False, False, "local"),  # nothing: the PostgreSQL tests skip, or fail in CI
    ],
)
def test_unset_lane_falls_back_in_order(
    fresh: pytest.MonkeyPatch, binaries: bool, pg_cron: bool, docker: bool, lane: str
) -> None:
    machine(fresh, binaries=binaries, pg_cron=pg_cron, docker=docker)
    assert lanes.server_lane() == lane


def test_a_dsn_comes_first(fresh: pytest.MonkeyPatch) -> None:
    machine(fresh, binaries=False, pg_cron=False, docker=True)
    fresh.setenv("SCHEDULER_TEST_DSN", "host=127.0.0.1 dbname=x")
    assert lanes.server_lane() == "local"


def test_an_explicit_lane_wins_and_a_wrong_one_is_an_error(fresh: pytest.MonkeyPatch) -> None:
    machine(fresh, binaries=True, pg_cron=True, docker=False)
    fresh.setenv("SCHEDULER_TEST_SERVER", "container")
    assert lanes.server_lane() == "container"
    fresh.setenv("SCHEDULER_TEST_SERVER", "vm")
    with pytest.raises(ClusterError, match="expected one of local, container"):
        lanes.server_lane()
