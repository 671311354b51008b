"""doctor's "pg_cron schedules in UTC" check on real servers. Job schedules are UTC minutes: a
pg_cron reading them in another zone (cron.timezone, pg_cron 1.5+, a postmaster setting) would
complete meetings hours late, and doctor must say so.

pg_cron 1.4 (the local lane) has no cron.timezone; 1.5+ (the container lane's 1.6) has it, GMT
by default. Which case a server is is decided from the catalog's extversion, parsed in the test
(pg_helpers.pg_cron_version; tests/postgres/test_server_versions.py pins each lane's); the unit
tests (tests/unit/test_security_checks.py) cover the rule's other cases.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pg_helpers import Server, connect, migrate, pg_cron_version, value

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.testing.lanes import throwaway_server

CHECK = "pg_cron schedules in UTC"
ZONE = "America/New_York"


def timezone_check(server: Server) -> dict[str, Any]:
    backend = PostgresBackend(server.url)
    try:
        (check,) = [c for c in backend.doctor() if c["name"] == CHECK]
    finally:
        backend.close()
    return dict(check)


def test_doctor_reads_cron_timezone_from_the_server(migrated: Server) -> None:
    """The lane's server: on pg_cron 1.4 no cron.timezone (the check passes and says so); on
    1.5+ pg_cron's default, GMT (it passes naming it). Then, on 1.5+, a second server of the
    lane started with cron.timezone = 'America/New_York': the check fails with the fix."""
    with connect(migrated.dsn) as conn:
        has_setting = pg_cron_version(conn)[:2] >= (1, 5)
        setting = value(conn, "select current_setting('cron.timezone', true)")
        report = value(conn, "select scheduler.security_report()")
    check = timezone_check(migrated)
    if not has_setting:
        assert setting is None
        assert report["cron_timezone"] is None
        assert check["ok"] is True
        assert check["detail"] == "this pg_cron has no cron.timezone: schedules are in GMT"
        return
    assert setting == "GMT"  # the lane's server leaves pg_cron's default
    assert report["cron_timezone"] == "GMT"
    assert check["ok"] is True and check["detail"] == "cron.timezone = GMT"

    with throwaway_server(settings={"cron.timezone": f"'{ZONE}'"}) as cluster:
        server = Server(cluster.dsn(), cluster.url(), cluster)
        migrate(server)
        with connect(server.dsn) as conn:
            assert value(conn, "select current_setting('cron.timezone')") == ZONE
            with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
                conn.execute("set cron.timezone = 'GMT'")  # a postmaster setting
        check = timezone_check(server)
    assert check["ok"] is False
    assert check["detail"] == f"cron.timezone = {ZONE}"
    assert "cron.timezone = 'GMT'" in check["fix"] and "restart PostgreSQL" in check["fix"]
