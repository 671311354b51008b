"""Each lane runs the server it stands for: the local lane PostgreSQL 15 with pg_cron 1.4
(schedules in minutes only: no seconds sweep), the container lane PostgreSQL 17 with pg_cron 1.5
or later (schedules in seconds: the sweep). The tests that branch on pg_cron's version
(pg_helpers.sweep_supported, from the catalog's extversion parsed in the test) therefore take one
branch in each lane of CI, and neither branch goes untested because a lane quietly changed.

With ``SCHEDULER_TEST_DSN`` the server is whatever it points at, not a lane's: the check is
skipped (a failure under ``SCHEDULER_REQUIRE_POSTGRES``, as every skip is). Outside CI the local
lane's versions are not checked: a developer's binaries may be another release.
"""

from __future__ import annotations

import os

import pytest
from pg_helpers import Server, connect, pg_cron_version, server_major, sweep_supported
from skip_helpers import require_or_skip

from scheduler_admin.testing.lanes import server_lane

REQUIRE_POSTGRES = os.environ.get("SCHEDULER_REQUIRE_POSTGRES", "") not in ("", "0", "false")


def test_the_lane_runs_the_postgresql_and_pg_cron_it_stands_for(migrated: Server) -> None:
    if migrated.cluster is None:
        require_or_skip("SCHEDULER_TEST_DSN is set: the server under test is not a lane's")
    lane = server_lane()
    if lane == "local" and not REQUIRE_POSTGRES:
        # a developer's own binaries may be another version; CI installs Debian 12's
        pytest.skip("the local lane's versions are checked in CI (SCHEDULER_REQUIRE_POSTGRES)")
    with connect(migrated.dsn) as conn:
        major, cron = server_major(conn), pg_cron_version(conn)
        seconds = sweep_supported(conn)
    found = f"PostgreSQL {major}, pg_cron {'.'.join(map(str, cron))}"
    if lane == "local":
        assert major == 15 and cron[:2] == (1, 4), f"the local lane runs {found}"
        assert not seconds
    else:
        assert lane == "container"
        assert major == 17 and cron[:2] >= (1, 5), f"the container lane runs {found}"
        assert seconds
