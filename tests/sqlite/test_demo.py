"""`make demo` (scheduler_admin.demo), the README's first command: both completion paths show."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.demo import insert as insert_demo
from scheduler_admin.demo import plan

UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("second", [0.0, 30.0, 49.9, 50.0, 59.999])
def test_the_first_meeting_ends_before_a_minute_boundary_the_others_after(second: float) -> None:
    """The first meeting ends 5 s before the minute its job fires in, at least 5 s from now; the
    waker's two end after that minute; the demo lasts 80 s at most."""
    now = datetime(2030, 5, 1, 12, 30, tzinfo=UTC) + timedelta(seconds=second)
    demo = plan(now)
    first, *rest = demo.meetings
    assert demo.tick.second == demo.tick.microsecond == 0
    assert first.end == demo.tick - timedelta(seconds=5)
    assert first.end - now >= timedelta(seconds=5)
    assert all(m.end > demo.tick for m in rest)
    assert demo.meetings[-1].end - now <= timedelta(seconds=80)
    assert len({m.id for m in demo.meetings}) == 3


def test_the_first_meetings_job_fires_in_the_demos_minute(db_path: Path) -> None:
    """Inserted as the demo does, the first meeting's job fires in the minute the demo waits
    for; the others' jobs only after it (the waker completes them first)."""
    demo = plan(datetime.now(UTC))
    insert_demo(str(db_path), demo.meetings)
    backend = SqliteBackend(db_path)
    try:
        runs = {j["meeting_id"]: j["next_run"] for j in backend.list_jobs()}
    finally:
        backend.close()
    first, *rest = demo.meetings
    assert datetime.fromisoformat(str(runs[first.id])) == demo.tick
    assert all(datetime.fromisoformat(str(runs[m.id])) > demo.tick for m in rest)


@pytest.mark.slow
def test_make_demo_shows_a_meetings_own_job_and_the_waker(tmp_path: Path) -> None:
    """The demo as `make demo` runs it (a real minute tick: 20 to 80 s): meeting 1 completed by
    its own cron job at the worker's tick, meetings 2 and 3 by the waker."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "SCHEDULER_DATABASE_URL",
            "ENVIRONMENT",
            "ENABLE_MEETING_STATUS_UPDATES",
        }
    }
    env.update(PYTHONPATH=str(REPO), SCHEDULER_JOBSTORE_URL=f"sqlite:///{tmp_path / 'demo.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "scheduler_admin.demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    by_job = [line for line in lines if line.startswith("   demo meeting 1: done at ")]
    assert len(by_job) == 1 and by_job[0].endswith(
        "by its own cron job (the worker's minute tick)"
    ), done.stdout
    for n in (2, 3):
        by_waker = [line for line in lines if line.startswith(f"   demo meeting {n}: done at ")]
        assert len(by_waker) == 1 and by_waker[0].endswith("by the waker"), done.stdout
    assert "6. every demo meeting is done." in done.stdout
