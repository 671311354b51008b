"""The scale harness's small version (issue 25, item 4): benchmarks/scale.py's functions at
10,000 rows on the lane's server, as a test of behaviour, not of time. Registration in bulk
gives every row its job, pg_cron's launcher is found and its CPU time and memory read as
numbers, idle and under steady writes, and probe meetings are completed, none before its end
time. Both lanes run it: pg_cron 1.4 completes the probes by their jobs at the minute tick
(hence slow), 1.6 by the seconds sweep, turned on here."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pg_helpers import Conn, Server, sweep_supported, value

try:
    from benchmarks import scale
except ImportError:  # not an editable install: the checkout's benchmarks package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import scale

pytestmark = pytest.mark.slow

ROWS = 10_000
DAYS = 30.0
PROBES = 20
# rows of this test, all deleted at the end: the bulk ('scale <n>'), the steady writes and the
# probes (benchmarks/scale.py names them so)
OURS = "title ~ '^scale '"


def bulk_rows_with_their_job(db: Conn) -> int:
    return int(
        value(
            db,
            "select count(*) from public.meetings m join cron.job j "
            "on j.jobname = 'meeting-status-' || m.id "
            "where m.title ~ '^scale [0-9]+$' and m.status = 'upcoming'",
        )
    )


def test_the_harness_registers_10000_rows_reads_the_launcher_and_completes_probes(
    db: Conn, migrated: Server
) -> None:
    """10,000 rows in one statement give 10,000 jobs; the launcher's CPU (idle and under 10
    inserts/s) and RSS are numbers; 20 probes are all done, each once, never early, by the paths
    of the lane's pg_cron."""
    scale.set_horizon(db, None)
    sweep = sweep_supported(db)
    assert scale.set_sweep(db, sweep) == ("1 seconds" if sweep else "unsupported")
    # The probes first, ending before the next minute boundary that leaves time for the rest:
    # on pg_cron 1.4 that tick completes them while the rest runs.
    now = scale.db_clock(db)
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if boundary - now < timedelta(seconds=8):
        boundary += timedelta(minutes=1)
    start = now + timedelta(seconds=3)
    # (with the sweep they are done about a second after their end: a few seconds suffice)
    spread = 5.0 if sweep else (boundary - start).total_seconds() - 1.5
    ends = scale.probe_end_times(start, PROBES, spread)
    assert ends[0] > now and ends[-1] < boundary
    try:
        ids = scale.insert_probes(db, ends)
        assert len(ids) == PROBES

        launcher = scale.find_launcher(db, migrated.cluster)
        assert launcher.pid > 0 and launcher.host_pid > 0
        empty = launcher.memory_kb()
        assert empty["VmRSS"] > 0

        reg = scale.bulk_register(db, ROWS, DAYS)
        assert reg["rows"] == ROWS and reg["seconds"] > 0 and reg["us_per_row"] > 0
        assert bulk_rows_with_their_job(db) == ROWS

        idle = scale.launcher_cpu(launcher, 2.0)
        assert idle["window_s"] >= 2.0
        assert idle["cpu_s"] >= 0 and 0 <= idle["percent_of_core"] <= 100 * 1.5
        assert idle["memory_kb"]["VmRSS"] > 0
        assert idle["memory_kb"]["VmHWM"] >= idle["memory_kb"]["VmRSS"]

        writes = scale.launcher_cpu_under_writes(launcher, migrated.dsn, 2.0, 10.0, DAYS)
        assert writes["cpu_s"] >= 0 and writes["percent_of_core"] >= 0
        assert writes["writes"] >= 10, writes  # 10 a second over 2 s, paced by the clock
        assert (
            int(value(db, "select count(*) from public.meetings where title = 'scale write'")) > 0
        )

        probes = scale.collect_probes(db, ids, boundary + timedelta(seconds=75))
        assert probes["not_done"] == 0, probes
        assert probes["events"] == PROBES and probes["events_per_probe_max"] == 1, probes
        assert probes["end_time_matches"], probes
        assert probes["early"] == 0 and probes["min_s"] >= 0, probes
        expected_paths = {"job", "reconcile"} | ({"sweep"} if sweep else set())
        assert set(probes["by_path"]) <= expected_paths, probes["by_path"]
        if sweep:
            assert "sweep" in probes["by_path"], probes["by_path"]
        assert bulk_rows_with_their_job(db) == ROWS  # nothing of the bulk was completed
    finally:
        db.execute(f"delete from public.meetings where {OURS}")
    assert value(db, f"select count(*) from public.meetings where {OURS}") == 0
    assert (
        value(db, "select count(*) from cron.job where jobname ~ '^meeting-status-[0-9a-f-]{36}$'")
        == 0
    )
