"""Shared helpers of the benchmark harness: the cluster, migrations, timing and cleanup."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from scheduler_admin.testing import supabase
from scheduler_admin.testing.cluster import (
    DEFAULT_DATABASE,
    Cluster,
    find_bindir,
    throwaway_cluster,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc

# Durable settings: the write-overhead ratios are only honest when a commit costs what it costs
# in production (the throwaway cluster of the tests turns fsync off).
DURABLE_SETTINGS: dict[str, str] = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
}

# Our jobs (a meeting's job); the reconcile job is left alone by cleanups.
JOB_PATTERN = "^meeting-status-[0-9a-f-]{36}$"


def log(message: str) -> None:
    stamp = dt.datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def sleep_until(when: dt.datetime) -> None:
    while True:
        left = (when - utcnow()).total_seconds()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True, **kwargs)


@contextlib.contextmanager
def benchmark_cluster(
    extra_settings: dict[str, str] | None = None,
    *,
    profile: bool = False,
    database: str = DEFAULT_DATABASE,
) -> Iterator[tuple[Cluster, dict[str, str]]]:
    """A throwaway cluster with pg_cron and durable settings; yields it and the settings used."""
    settings = dict(DURABLE_SETTINGS)
    if profile:
        settings["shared_preload_libraries"] = "'pg_cron,pg_stat_statements'"
        settings["pg_stat_statements.track"] = "all"
    settings.update(extra_settings or {})
    with throwaway_cluster(settings=settings, database=database) as cluster:
        yield cluster, settings


# Where the benchmarked server runs:
#   local:     a throwaway cluster of this machine's PostgreSQL binaries (pg_cron 1.4 here).
#   container: the container lane (scheduler_admin.testing.container.container_cluster: the image
#              of scripts/build-pg17-image.sh, PostgreSQL 17 + pg_cron 1.6), as benchmarks.scale
#              runs it; its server log is the container's output, copied to a file under
#              benchmarks/out/ whenever the log is read (log_offset, scan_log).
SERVERS = ("local", "container")

# Files that hold a copy of a server log kept elsewhere, and how to read the whole log.
_LOG_SOURCES: dict[Path, Callable[[], bytes]] = {}


def _refresh_log(logfile: Path | None) -> None:
    fetch = _LOG_SOURCES.get(logfile) if logfile is not None else None
    if fetch is not None:
        with contextlib.suppress(Exception):
            logfile.write_bytes(fetch())  # type: ignore[union-attr]


def container_logfile(cluster: Any) -> Path:
    """A file under benchmarks/out/ that log_offset and scan_log refresh from the container's
    output (the server logs to stderr there; the log only grows, so offsets hold)."""
    path = REPO_ROOT / "benchmarks" / "out" / f"container-{cluster.port}.postgresql.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    _LOG_SOURCES[path] = lambda: bytes(cluster._wrapped().logs())
    return path


@contextlib.contextmanager
def container_benchmark_cluster(
    *, profile: bool = False, database: str = DEFAULT_DATABASE
) -> Iterator[tuple[Any, dict[str, str]]]:
    """The container lane's server with pg_cron and the durable settings (as benchmark_cluster)."""
    from scheduler_admin.testing.container import container_cluster

    settings = dict(DURABLE_SETTINGS)
    if profile:
        settings["shared_preload_libraries"] = "'pg_cron,pg_stat_statements'"
        settings["pg_stat_statements.track"] = "all"
    with container_cluster(database=database, settings=settings) as cluster:
        yield cluster, settings


# Who owns public.meetings (and so every function and job of ours) in a benchmarked database.
#   superuser: the superuser migrates and owns it (self-hosted): the set-based path, one
#              INSERT ... ON CONFLICT / one DELETE on cron.job per statement.
#   supabase:  the Supabase shape (scheduler_admin.testing.supabase, platform grants): a migration
#              role that is not a superuser owns it and may only SELECT cron.job, so the
#              scheduler calls cron.schedule / cron.unschedule once per job.
SHAPES = ("superuser", "supabase")


@dataclass
class Target:
    """A migrated benchmark database: ``dsn`` logs in as the owner of public.meetings (the role
    every measured statement runs as), ``admin_dsn`` as the superuser (set-up and cleaning)."""

    shape: str
    cluster: Any  # Cluster, or the container lane's ContainerCluster
    dsn: str
    admin_dsn: str
    url: str
    server_log: Path | None = None  # the container's log copy; else the cluster's logfile

    @property
    def logfile(self) -> Path:
        return self.server_log or self.cluster.logfile

    @property
    def where(self) -> str:
        root = getattr(self.cluster, "root", None)
        return str(root) if root is not None else f"container {self.cluster.image}"


@contextlib.contextmanager
def shape_cluster(
    shape: str, *, profile: bool = False, server: str = "local"
) -> Iterator[tuple[Target, dict[str, str]]]:
    """A throwaway cluster of one shape (on a ``server`` of SERVERS), migrated with alembic as the
    owner of public.meetings, with the benchmark-only objects created by that owner."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}: expected one of {', '.join(SERVERS)}")
    database = supabase.DATABASE if shape == "supabase" else DEFAULT_DATABASE
    start = container_benchmark_cluster if server == "container" else benchmark_cluster
    with start(profile=profile, database=database) as (cluster, settings):
        server_log = container_logfile(cluster) if server == "container" else None
        admin_dsn = cluster.dsn()
        if shape == "supabase":
            dsn = cluster.dsn(user=supabase.MIGRATOR)
            url = cluster.url(user=supabase.MIGRATOR)
            supabase.apply_shape(admin_dsn, dsn, "platform")
        else:
            dsn, url = admin_dsn, cluster.url()
        migrate(dsn)
        with connect(dsn) as conn:
            prepare_benchmark_objects(conn)
        try:
            yield Target(shape, cluster, dsn, admin_dsn, url, server_log), settings
        finally:
            if server_log is not None:
                _refresh_log(server_log)  # the whole log stays under benchmarks/out/
                _LOG_SOURCES.pop(server_log, None)


# Lines of the server log that mean a backend failed badly (what the burst scenario counts).
LOG_PATTERNS = {
    "stack_depth": re.compile(r"stack depth limit exceeded"),
    "crash": re.compile(r"terminated by signal|was terminated|server process .* exited|"
                        r"terminating any other active server processes|PANIC"),
    "error": re.compile(r"\b(ERROR|FATAL):"),
}  # fmt: skip


def log_offset(logfile: Path | None) -> int:
    _refresh_log(logfile)
    try:
        return logfile.stat().st_size if logfile else 0
    except OSError:
        return 0


def scan_log(logfile: Path | None, offset: int) -> dict[str, Any]:
    """Counts of LOG_PATTERNS in the server log written since ``offset``, with a few samples of
    the worst lines (stack depth and crash lines first)."""
    out: dict[str, Any] = {key: 0 for key in LOG_PATTERNS}
    out["samples"] = []
    if logfile is None:
        return out
    _refresh_log(logfile)
    try:
        with logfile.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return out
    samples: list[str] = []
    lines = text.splitlines()
    # stack depth errors of autovacuum workers (retried later; no job run fails) apart
    out["stack_depth_autovacuum"] = 0
    for i, line in enumerate(lines):
        for key, pattern in LOG_PATTERNS.items():
            if pattern.search(line):
                out[key] += 1
                if key != "error" and len(samples) < 5:
                    samples.append(line[:300])
                if key == "stack_depth" and any(
                    "CONTEXT:  automatic vacuum" in nxt for nxt in lines[i + 1 : i + 4]
                ):
                    out["stack_depth_autovacuum"] += 1
    if not samples:
        samples = [ln[:300] for ln in text.splitlines() if LOG_PATTERNS["error"].search(ln)][:3]
    out["samples"] = samples
    return out


def migrate(dsn: str, revision: str = "head", *, down: bool = False) -> None:
    """alembic upgrade (or downgrade) with the repository's migrations (as the tests do)."""
    from alembic import command
    from sqlalchemy import create_engine, pool

    from scheduler_admin.migrate import alembic_config

    engine = create_engine(
        "postgresql+psycopg://", poolclass=pool.NullPool, creator=lambda: psycopg.connect(dsn)
    )
    with engine.begin() as conn:
        cfg = alembic_config(connection=conn)
        if down:
            command.downgrade(cfg, revision)
        else:
            command.upgrade(cfg, revision)
    engine.dispose()


def prepare_benchmark_objects(conn: psycopg.Connection[Any]) -> None:
    """Benchmark-only objects in the throwaway database.

    * ``public.meetings.bench_completed_at``: stamped with ``clock_timestamp()`` by a row
      trigger when a meeting goes from upcoming to done (its WHEN clause keeps it off every
      other write), so that no early completion can hide.
    * ``bench.meetings_plain``: the same table (columns, defaults, constraints, indexes) without
      our triggers, the baseline of the write-overhead scenario.
    """
    conn.execute("create schema if not exists bench")
    conn.execute(
        "alter table public.meetings add column if not exists bench_completed_at timestamptz"
    )
    conn.execute(
        """
        create or replace function bench.stamp_completion() returns trigger
        language plpgsql as $$
        begin
            new.bench_completed_at := clock_timestamp();
            return new;
        end
        $$
        """
    )
    conn.execute("drop trigger if exists bench_stamp_completion on public.meetings")
    conn.execute(
        """
        create trigger bench_stamp_completion
            before update on public.meetings
            for each row
            when (old.status = 'upcoming' and new.status = 'done')
            execute function bench.stamp_completion()
        """
    )
    conn.execute("drop table if exists bench.meetings_plain")
    conn.execute("create table bench.meetings_plain (like public.meetings including all)")
    # For the write-cost breakdown: the same table with our BEFORE row trigger and an AFTER
    # statement trigger with a transition table that does nothing (bench.after_mode = 'noop')
    # or only aggregates the transition table as our trigger does ('agg'): the cost of
    # transition capture and of reading it, without registering jobs.
    conn.execute("drop table if exists bench.meetings_capture")
    conn.execute("create table bench.meetings_capture (like public.meetings including all)")
    conn.execute(
        """
        create or replace function bench.after_insert_probe() returns trigger
        language plpgsql as $$
        begin
            if current_setting('bench.after_mode', true) = 'agg' then
                perform array_agg(n.id), array_agg(n.end_time) from new_meetings n
                where n.status = 'upcoming';
            end if;
            return null;
        end
        $$
        """
    )
    conn.execute(
        "create trigger capture_before_write before insert on bench.meetings_capture "
        "for each row execute function scheduler.meetings_before_write()"
    )
    conn.execute(
        "create trigger capture_after_insert after insert on bench.meetings_capture "
        "referencing new table as new_meetings "
        "for each statement execute function bench.after_insert_probe()"
    )
    # A copy of cron.job (columns, defaults, indexes) without pg_cron's statement trigger.
    conn.execute("drop table if exists bench.job_copy")
    conn.execute("create table bench.job_copy (like cron.job including all)")


def clean(conn: psycopg.Connection[Any], *, vacuum: bool = True) -> None:
    """Remove every meeting and every job of ours without going through the triggers.

    Deletes our rows of cron.job in one statement without going through our functions (the
    product's unregister_jobs does the same where the owner may write cron.job, but only for
    the jobs of meetings it is given), which makes a clean start cheap between runs of 100,000
    meetings.
    """
    conn.execute("update scheduler.settings set enabled = true")
    conn.execute(
        "truncate public.meetings, bench.meetings_plain, bench.meetings_capture, bench.job_copy"
    )
    conn.execute("delete from cron.job where jobname ~ %s", (JOB_PATTERN,))
    conn.execute("truncate cron.job_run_details")
    if vacuum:
        conn.execute(
            "vacuum analyze public.meetings, bench.meetings_plain, bench.meetings_capture, bench.job_copy, "
            "cron.job, cron.job_run_details"
        )


def count_our_jobs(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "select count(*) from cron.job where jobname ~ %s", (JOB_PATTERN,)
    ).fetchone()
    return int(row[0]) if row else 0


def function_exists(conn: psycopg.Connection[Any], signature: str) -> bool:
    row = conn.execute("select to_regprocedure(%s) is not null", (signature,)).fetchone()
    return bool(row and row[0])


def machine_description(conn: psycopg.Connection[Any] | None = None) -> dict[str, str]:
    """nproc, memory, CPU model, PostgreSQL / pg_cron / Python / APScheduler versions."""
    import os
    import platform

    info: dict[str, str] = {}
    info["nproc"] = str(os.cpu_count())
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kb = int(line.split()[1])
                info["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    info["os"] = platform.platform()
    info["python"] = platform.python_version()
    try:
        import apscheduler

        info["apscheduler"] = apscheduler.__version__
    except ImportError:
        info["apscheduler"] = "not installed"
    info["psycopg"] = psycopg.__version__
    bindir = find_bindir()
    if bindir is not None:
        info["postgres_binaries"] = str(bindir)
    if conn is not None:
        row = conn.execute("select version()").fetchone()
        info["postgresql"] = str(row[0]) if row else "?"
        row = conn.execute(
            "select extversion from pg_extension where extname = 'pg_cron'"
        ).fetchone()
        info["pg_cron"] = str(row[0]) if row else "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git_commit"] = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    return info


def server_settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    names = [
        "fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_connections",
        "shared_preload_libraries", "cron.max_running_jobs", "cron.use_background_workers",
        "cron.log_run", "cron.log_statement", "cron.host", "wal_level", "TimeZone",
    ]  # fmt: skip
    out: dict[str, str] = {}
    for name in names:
        row = conn.execute("select current_setting(%s, true)", (name,)).fetchone()
        out[name] = str(row[0]) if row and row[0] is not None else "(unset)"
    return out
