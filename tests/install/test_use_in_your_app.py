"""docs/use-in-your-app.md followed as written, from an empty directory: a fresh virtual
environment, the built wheel with the fastapi extra and uvicorn, the page's FastAPI app started
with uvicorn on the SQLite development store, the page's ``sqlite3`` insert (run through
Python's sqlite3) of a meeting ending 2 s later, which becomes ``done``, and the log lines the
page promises in uvicorn's output. Then the page's other ways to see those lines, and uvicorn's
default logging, which shows none of them."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from docs_helpers import blocks, commands, section
from install_helpers import Dist, Venv, clean_env, install, make_venv

pytestmark = pytest.mark.packaging

PAGE = "docs/use-in-your-app.md"
STARTUP_TIMEOUT = 90.0  # seconds: uvicorn up, the store migrated, recovery run
DONE_TIMEOUT = 30.0  # seconds after the meeting's end time


def app_snippet() -> str:
    (code,) = blocks(section(PAGE, "The FastAPI app"), "python")
    return code


def run_commands() -> list[list[str]]:
    (block,) = blocks(section(PAGE, "The FastAPI app"), "sh")
    return commands(block, console=False)


def logging_section() -> str:
    return section(PAGE, "Seeing its log lines")


def documented_lines() -> list[re.Pattern[str]]:
    """The page's log lines, each as a pattern: its numbers (counts, the head revision) may
    differ, the rest is as the page shows it."""
    (block,) = blocks(logging_section(), "text")
    patterns = []
    for line in block.splitlines():
        parts = re.split(r"\d+", line)
        patterns.append(re.compile(r"\d+".join(map(re.escape, parts))))
    assert len(patterns) == 2, block
    return patterns


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class App:
    process: subprocess.Popen[bytes]
    log: Path
    directory: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` until it holds; fail with uvicorn's output if the app exits first or
        the time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None:
                pytest.fail(f"uvicorn exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout:g} s; uvicorn's output:\n{self.output()}")
            time.sleep(0.05)


@contextlib.contextmanager
def uvicorn(venv: Venv, directory: Path, command: list[str], **env: str) -> Iterator[App]:
    """The page's ``uvicorn main:app`` in ``directory`` on 127.0.0.1 and a free port, with no
    scheduler setting (the SQLite development store in ``directory``); stopped with Ctrl-C."""
    assert command[:2] == ["uvicorn", "main:app"], command
    log = directory / "uvicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [venv.bin("uvicorn"), *command[1:], "--host", "127.0.0.1", "--port", str(free_port())],
            cwd=directory,
            env=clean_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    app = App(process, log, directory)
    try:
        yield app
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class PageVenv:
    venv: Venv
    started: float  # time.monotonic() when the directory was empty
    seconds: float  # the virtual environment made and the packages installed


@pytest.fixture(scope="module")
def page_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> PageVenv:
    """A fresh virtual environment (with its own pip, as a newcomer's) holding the built wheel
    with the extra the page installs it with, and what the page's "Run it" installs."""
    started = time.monotonic()
    (wheel_block,) = blocks(section(PAGE, "From a built wheel"), "sh")
    (extra,) = re.findall(rf"{re.escape(dist.wheel.name)}(\[\w+\])", wheel_block)
    pip, uvicorn_command = run_commands()
    assert pip[:2] == ["pip", "install"], pip
    venv = make_venv(tmp_path_factory.mktemp("app-venv") / "venv", with_pip=True)
    install(venv, f"{dist.wheel}{extra}", *pip[2:], own_pip=True)
    assert uvicorn_command[0] == "uvicorn"
    return PageVenv(venv, started, time.monotonic() - started)


def store_at_head(directory: Path) -> Callable[[], bool]:
    """Whether the development store exists and its migration has committed."""

    def ready() -> bool:
        path = directory / "scheduler_jobs.db"
        if not path.exists():
            return False
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=1)) as conn:
                row = conn.execute("select version_num from alembic_version").fetchone()
        except sqlite3.OperationalError:  # no table yet, or locked by the migration
            return False
        return row is not None

    return ready


def worker_ran(directory: Path) -> Callable[[], bool]:
    """Whether the emulated cron worker has recorded a run in the development store."""

    def ready() -> bool:
        if not store_at_head(directory)():
            return False
        with contextlib.closing(sqlite3.connect(directory / "scheduler_jobs.db", timeout=1)) as c:
            try:
                return c.execute("select count(*) from cron_job_run_details").fetchone()[0] > 0
            except sqlite3.OperationalError:
                return False

    return ready


def test_the_page_as_written_a_meeting_becomes_done_and_the_log_lines_show(
    dist: Dist, page_venv: PageVenv, tmp_path: Path
) -> None:
    """From an empty directory to a meeting done, following the page only; the page's log
    lines are in uvicorn's output."""
    app_dir = tmp_path / "my-app"
    app_dir.mkdir()
    (app_dir / "main.py").write_text(app_snippet(), encoding="utf-8")
    _pip, command = run_commands()
    (sh,) = blocks(section(PAGE, "Development"), "sh")
    (insert, query) = commands(sh, console=False)
    assert insert[:2] == query[:2] == ["sqlite3", "scheduler_jobs.db"]
    (expected,) = re.findall(r"prints `([^`]+)`", section(PAGE, "Development"))
    patterns = documented_lines()

    app_started = time.monotonic()
    with uvicorn(page_venv.venv, app_dir, command) as app:
        output = app.output
        app.wait_for(
            "the page's log lines",
            lambda: all(p.search(output()) for p in patterns),
            STARTUP_TIMEOUT,
        )
        assert store_at_head(app_dir)()
        with contextlib.closing(sqlite3.connect(app_dir / insert[1], timeout=10)) as conn:
            with conn:
                conn.execute(insert[2])
            (end_time,) = conn.execute("select end_time from meetings").fetchone()
            end = datetime.fromisoformat(end_time.replace("Z", "+00:00"))
            lead = (end - datetime.now(timezone.utc)).total_seconds()
            assert 0.5 < lead <= 2.0, f"the meeting ends {lead:.2f} s ahead"

            def done() -> bool:
                rows = conn.execute(query[2]).fetchall()
                return ["|".join(map(str, row)) for row in rows] == [expected]

            app.wait_for(f"{query[2]!r} giving {expected!r}", done, lead + DONE_TIMEOUT)
            finished = time.monotonic()
            late = (datetime.now(timezone.utc) - end).total_seconds()
        assert late >= 0, "done before its end time"

    assert app.process.returncode == 0, app.output()
    assert "Traceback" not in app.output(), app.output()
    # the wheel is built once per session, before: its time is added
    total = finished - page_venv.started + dist.seconds
    print(
        f"\nfrom an empty directory to a meeting done: {total:.1f} s (python -m build "
        f"{dist.seconds:.1f} s, the virtual environment and pip install {page_venv.seconds:.1f} s, "
        f"uvicorn up to the meeting done {finished - app_started:.1f} s: the meeting ended "
        f"{lead:.1f} s after its insert and was seen done {late:.2f} s after its end)"
    )


def _without_the_line(code: str) -> str:
    line = "logging.basicConfig(level=logging.INFO)"
    kept = [row for row in code.splitlines(keepends=True) if not row.startswith(line)]
    assert len(kept) == len(code.splitlines()) - 1, "the snippet has no basicConfig line"
    return "".join(kept)


def _setup(variant: str, directory: Path) -> list[str]:
    """Write the app of one of the page's ways to log into ``directory``; uvicorn's command."""
    text = logging_section()
    _pip, command = run_commands()
    if variant == "scheduler_admin's lines alone":
        (_one_line, quieter) = blocks(text, "python")
        code = app_snippet().replace("logging.basicConfig(level=logging.INFO)", quieter.strip())
        assert code != app_snippet()
    elif variant == "uvicorn --log-config":
        code = _without_the_line(app_snippet())
        (config,) = blocks(text, "json")
        (directory / "logging.json").write_text(config, encoding="utf-8")
        (given,) = re.findall(r"`(uvicorn main:app[^`]*--log-config logging\.json)`", text)
        command = given.split()
        json.loads(config)
    else:  # uvicorn's default logging, even at --log-level info
        code = _without_the_line(app_snippet())
        command = [*command, "--log-level", "info"]
    (directory / "main.py").write_text(code, encoding="utf-8")
    return command


@pytest.mark.parametrize(
    ("variant", "shown"),
    [
        ("scheduler_admin's lines alone", True),
        ("uvicorn --log-config", True),
        ("uvicorn's default logging", False),
    ],
)
def test_the_ways_to_see_the_log_lines(
    page_venv: PageVenv, tmp_path: Path, variant: str, shown: bool
) -> None:
    """The page's other ways show the migration line and the recovery summary (and, for the
    quieter one, not alembic's INFO lines); uvicorn's own logging shows neither, as the page
    says."""
    command = _setup(variant, tmp_path)
    migrated, recovered = documented_lines()
    with uvicorn(page_venv.venv, tmp_path, command, SCHEDULER_STARTUP_DELAY="0") as app:
        if shown:
            app.wait_for(
                "the page's log lines",
                lambda: bool(migrated.search(app.output()) and recovered.search(app.output())),
                STARTUP_TIMEOUT,
            )
        else:
            # the migration line is logged before the worker starts, whose first run is at once
            app.wait_for("the worker's first run", worker_ran(tmp_path), STARTUP_TIMEOUT)
    output = app.output()
    assert app.process.returncode == 0, output
    assert "Application startup complete" in output, output
    if shown:
        assert "Traceback" not in output, output
    else:
        assert not migrated.search(output) and not recovered.search(output), output
        assert "scheduler_admin" not in output, output
    if variant == "scheduler_admin's lines alone":
        assert "INFO:alembic" not in output, output
