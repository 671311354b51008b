"""End to end on PostgreSQL + pg_cron: a FastAPI application (``include_scheduler(app,
metrics=True)``) served by uvicorn on 127.0.0.1, and a real Prometheus server (Debian's
package) on 127.0.0.1 with its own configuration and data directory, scraping the
application's ``GET /metrics`` every second and loading deploy/prometheus/alerts.yml. Its HTTP
API answers ``scheduler_up`` 1 and the pending rows and jobs that the database holds, per
transition, and follows the database when meetings are added; every metric name the alerts and
the dashboard select is one Prometheus ingested."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pg_helpers import JOB_PATTERN, Conn, Server, value
from prometheus_helpers import ALERTS, alert_rules, binary, unknown_names
from skip_helpers import require_or_skip

T = TypeVar("T")
JOB = "meeting-scheduler"
APP = """\
from fastapi import FastAPI

from scheduler_admin.fastapi import include_scheduler

app = FastAPI()
include_scheduler(app, metrics=True)
"""


def wait_for(what: str, condition: Callable[[], T | None], timeout: float) -> T:
    """Poll ``condition`` (every 0.1 s) until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process this test started (by its own handle), politely first."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def log_of(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@dataclass
class Running:
    prometheus: str  # http://127.0.0.1:PORT
    app: str
    prometheus_log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query through /api/v1/query: its vector's samples."""
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        answer = get_json(url)
        assert answer["status"] == "success", answer
        assert answer["data"]["resultType"] == "vector", answer
        return answer["data"]["result"]  # type: ignore[no-any-return]

    def one(self, promql: str) -> float | None:
        """The value of a query answering one sample, None while it answers none."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def running(migrated: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The application and Prometheus, started once for this module's tests (each test's
    ``db`` fixture resets the database under them)."""
    tmp_path = tmp_path_factory.mktemp("prometheus")
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        require_or_skip("uvicorn is not installed (the test extra installs it)")
    prometheus = binary("prometheus")
    # the application: uvicorn on a socket bound here (no port race), its log in a file
    (tmp_path / "scheduler_app.py").write_text(APP)
    env = {
        key: val
        for key, val in os.environ.items()
        if not key.startswith(("SCHEDULER_", "SUPABASE_")) and key not in ("DATABASE_URL",)
    }
    env.update(
        SCHEDULER_DATABASE_URL=migrated.url,
        ENVIRONMENT="prod",
        # metrics only: no start-up recovery, waker or webhook dispatcher in this database
        ENABLE_MEETING_STATUS_UPDATES="false",
        PYTHONPATH=str(tmp_path),
    )
    app_socket = socket.socket()
    app_socket.bind(("127.0.0.1", 0))
    app_url = f"http://127.0.0.1:{app_socket.getsockname()[1]}"
    app_log = tmp_path / "app.log"
    with app_log.open("wb") as out:
        app = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "scheduler_app:app", "--fd", str(app_socket.fileno()),
             "--log-level", "warning"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            pass_fds=(app_socket.fileno(),),
        )  # fmt: skip
    app_socket.close()
    # Prometheus: its own configuration and data directory, on 127.0.0.1 only
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "static_configs": [{"targets": [app_url.removeprefix("http://")]}],
                    }
                ],
            }
        )
    )
    prometheus_log = tmp_path / "prometheus.log"
    with prometheus_log.open("wb") as out:
        server = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Running(f"http://127.0.0.1:{port}", app_url, prometheus_log)
    try:

        def ready() -> bool | None:
            for name, process, log in (
                ("uvicorn", app, app_log),
                ("prometheus", server, prometheus_log),
            ):
                if process.poll() is not None:
                    pytest.fail(f"{name} exited with {process.returncode}:\n{log_of(log)}")
            try:
                with urllib.request.urlopen(f"{running.prometheus}/-/ready", timeout=2) as r:
                    return True if r.status == 200 else None
            except (urllib.error.URLError, OSError):
                return None

        wait_for("Prometheus to be ready", ready, timeout=15)
        yield running
    finally:
        stop(server)
        stop(app)


def meetings_in(db: Conn) -> int:
    return int(value(db, "select count(*) from meetings where status = 'upcoming'"))


def jobs_in(db: Conn) -> int:
    return int(value(db, "select count(*) from cron.job where jobname ~ %s", (JOB_PATTERN,)))


def test_prometheus_scrapes_what_the_database_holds(db: Conn, running: Running) -> None:
    """scheduler_up 1, and the pending rows and jobs of the meetings transition equal to what
    the database counts, through Prometheus's own query API; then three more meetings show up
    in a later scrape."""
    db.execute(
        "insert into meetings (title, end_time) "
        "select 'e2e', now() + (n || ' days')::interval from generate_series(1, 4) n"
    )
    up = 'scheduler_up{job="meeting-scheduler"}'
    assert wait_for("a scrape with scheduler_up", lambda: running.one(up), timeout=15) == 1
    pending = 'scheduler_upcoming_meetings{job="meeting-scheduler", transition="meetings"}'
    jobs = 'scheduler_jobs{job="meeting-scheduler", transition="meetings"}'
    assert meetings_in(db) == 4 and jobs_in(db) == 4
    assert wait_for("the pending rows", lambda: running.one(pending), timeout=10) == 4
    assert running.one(jobs) == jobs_in(db)
    # the target itself, as Prometheus sees it
    assert running.one(f'up{{job="{JOB}"}}') == 1

    db.execute(
        "insert into meetings (title, end_time) "
        "select 'e2e', now() + (n || ' hours')::interval from generate_series(1, 3) n"
    )
    expected = meetings_in(db)
    assert expected == 7
    assert (
        wait_for(
            "a scrape with the new meetings",
            lambda: v if (v := running.one(pending)) == expected else None,
            timeout=10,
        )
        == expected
    )
    assert running.one(jobs) == jobs_in(db) == 7


def test_the_alerts_load_and_name_only_ingested_metrics(db: Conn, running: Running) -> None:
    """The rules load in the running server and are evaluated without error; every metric name
    an alert or the dashboard selects is one Prometheus ingested from GET /metrics."""
    # every family present once a scrape succeeded (scheduler_up 1)
    wait_for("a scrape with scheduler_up 1", lambda: running.one("scheduler_up") or None, 15)
    names = set(get_json(f"{running.prometheus}/api/v1/label/__name__/values")["data"])
    ours = {n for n in names if n.startswith("scheduler_")}
    assert {"scheduler_completions_total", "scheduler_completion_lateness_seconds_bucket"} <= ours
    assert unknown_names(ours) == {}

    def rules() -> list[dict[str, Any]]:
        groups = get_json(f"{running.prometheus}/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def settled() -> list[dict[str, Any]] | None:
        # evaluated since a scrape succeeded: SchedulerUnreachable is pending before the first
        found = rules()
        quiet = found and all(r["health"] == "ok" and r["state"] == "inactive" for r in found)
        return found if quiet else None

    try:
        found = wait_for("every rule evaluated, healthy and quiet", settled, timeout=10)
    except pytest.fail.Exception:
        states = [(r["name"], r["health"], r["state"], r.get("lastError")) for r in rules()]
        pytest.fail(f"the rules did not all evaluate to inactive: {states}")
    # nothing is wrong in this database: no alert fires, none is even pending
    assert {r["name"] for r in found} == {r["alert"] for r in alert_rules()}
