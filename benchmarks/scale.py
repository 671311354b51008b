"""Scale: what N upcoming rows cost pg_cron's launcher, per pg_cron version, side by side in one run.

Issue 25, item 4. For each pg_cron version (``--versions``) and job horizon (``--horizon``), a
fresh server with durable settings (``fsync``, ``synchronous_commit``, ``full_page_writes`` on):

* ``1.4``: the local throwaway cluster (PostgreSQL 15 + pg_cron 1.4.2, Debian 12's packages;
  :func:`benchmarks.common.benchmark_cluster`);
* ``1.6``: the container lane's server (PostgreSQL 17 + pg_cron 1.6.5, Debian 13's packages, the
  image of ``scripts/build-pg17-image.sh``; :func:`scheduler_admin.testing.container.container_cluster`),
  with the seconds sweep on or off (``--sweep``; pg_cron 1.4 has none).

Both take the settings of the test suite's servers (``cron.use_background_workers=off``,
``cron.max_running_jobs=32``, ``shared_buffers=128MB``), are migrated with alembic to head as the
superuser (the set-based path), and are measured one after the other, never at once:

1. **bulk registration**: ``--rows`` upcoming meetings, end times evenly spread over ``--days``
   days from 10 minutes ahead, inserted through the triggers in one ``insert … select``
   (autocommit, commit included): seconds and microseconds per row; the jobs of ours it left in
   ``cron.job``. Then an untimed ``vacuum analyze`` of ``public.meetings`` and ``cron.job`` (so
   that no autovacuum runs in the windows) and ``--settle`` seconds for the launcher to reload.
2. **launcher CPU, idle**: utime + stime of the backend whose ``backend_type`` is
   ``pg_cron launcher`` (``/proc/<pid>/stat``) over ``--window`` seconds (60 by default: one
   minute boundary, pg_cron 1.4's per-minute work, in every window), as % of one core.
3. **under writes**: the same while another connection inserts ``--write-rate`` single-row
   meetings a second (each its own transaction, end times within the spread), paced by the clock.
4. **launcher RSS**: ``VmRSS`` of ``/proc/<pid>/status`` after each window (the table gives the
   one after the idle window, and the peak ``VmHWM``), and before the rows were inserted.
5. **probe lateness**: ``--probes`` meetings ending at known times (evenly over ``--probe-spread``
   seconds from ``--probe-lead`` ahead, never on a minute boundary) into the idle server;
   lateness = ``completed_at - end_time`` of their ``scheduler.completion_events``, by path
   (``job``: its own job at the minute tick; ``reconcile``; ``sweep``), p50 and max; a probe
   completed before its end time counts as early (must be 0).

The launcher's host process: on the local cluster the pid of ``pg_stat_activity`` itself (its
command line and parent, the postmaster of ``postmaster.pid``, are checked); in the container
the process ``docker top`` lists as ``pg_cron launcher`` whose ``NSpid`` (the pid inside the
container's namespace) is the pid ``pg_stat_activity`` gives (read through ``docker exec`` when
this machine's ``/proc`` does not show it).

``--horizon``: comma-separated; ``none`` is today's behaviour (every upcoming row has its job).
A value (an interval such as ``6 hours``) sets ``scheduler.settings.job_horizon`` once the job
horizon exists (issue 25, item 1); on a schema without it the run stops and says so. Each horizon
is a row beside ``none``, every version, one run.

Run::

    python -m benchmarks.scale --rows 100000 --days 30 --versions 1.4,1.6 --sweep on --horizon none

The table goes to stdout (``--output FILE`` appends it with the command and the load),
progress to stderr, raw numbers to ``benchmarks/out/scale.json``. ``tests/postgres/
test_scale_small.py`` runs the same functions at 10,000 rows on each lane's server as a test of
behaviour, not of time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shlex
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import (
    DURABLE_SETTINGS,
    REPO_ROOT,
    benchmark_cluster,
    connect,
    count_our_jobs,
    log,
    machine_description,
    migrate,
    server_settings,
    utcnow,
)

UTC = dt.timezone.utc
VERSIONS = ("1.4", "1.6")
SERVERS = {
    "1.4": "local throwaway cluster (PostgreSQL 15, Debian 12's pg_cron 1.4.2)",
    "1.6": "container lane (PostgreSQL 17, Debian 13's pg_cron 1.6.5)",
}
PATHS = ("job", "sweep", "waker", "reconcile", "recover", "write")
LAUNCHER = "pg_cron launcher"
FIRST_END = dt.timedelta(minutes=10)  # the bulk rows' first end time, ahead of the insert
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "out" / "scale.json"


class ScaleError(RuntimeError):
    """A measurement that cannot be taken here (and why)."""


# -- options ----------------------------------------------------------------------------------------


@dataclass
class Options:
    rows: int = 100_000
    days: float = 30.0
    window: float = 60.0
    settle: float = 10.0
    write_rate: float = 10.0
    probes: int = 20
    probe_spread: float = 50.0
    probe_lead: float = 5.0
    probe_grace: float = 90.0
    sweep: bool = True


def parse_horizon(text: str) -> str | None:
    """``none`` (no horizon, today's behaviour) or an interval's text, as PostgreSQL reads it."""
    text = text.strip()
    return None if text.lower() in ("none", "null", "") else text


def horizon_label(horizon: str | None) -> str:
    return "none" if horizon is None else horizon


# -- settings of the database under test --------------------------------------------------------------


def pg_cron_version(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("select extversion from pg_extension where extname = 'pg_cron'").fetchone()
    return str(row[0]) if row else "?"


def server_version(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("show server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def sweep_supported(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select scheduler.sweep_supported()").fetchone()
    return bool(row and row[0])


def set_sweep(conn: psycopg.Connection[Any], on: bool) -> str:
    """sweep_seconds 1 (the product's default) or 0, and the sweep job made to match at once
    (``scheduler.sync_sweep()``, as the reconcile job would within a minute); returns its
    schedule, ``off`` or ``unsupported`` (pg_cron 1.4)."""
    conn.execute("update scheduler.settings set sweep_seconds = %s", (1 if on else 0,))
    row = conn.execute("select scheduler.sync_sweep()").fetchone()
    return str(row[0]) if row else "?"


def has_job_horizon(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "select exists (select 1 from pg_attribute where attrelid = 'scheduler.settings'::regclass "
        "and attname = 'job_horizon' and attnum > 0 and not attisdropped)"
    ).fetchone()
    return bool(row and row[0])


def set_horizon(conn: psycopg.Connection[Any], horizon: str | None) -> None:
    """``scheduler.settings.job_horizon`` = the interval, or null for ``none``. Without the
    column (the horizon is not built yet) ``none`` is what the schema does anyway, and any other
    value is refused."""
    if not has_job_horizon(conn):
        if horizon is None:
            return
        raise ScaleError(
            f"--horizon {horizon!r}: this schema has no scheduler.settings.job_horizon "
            "(the job horizon of issue 25 is not built yet); only --horizon none can run"
        )
    conn.execute("update scheduler.settings set job_horizon = %s::interval", (horizon,))


# -- the launcher's process ------------------------------------------------------------------------------


def launcher_backend_pid(conn: psycopg.Connection[Any], timeout: float = 15.0) -> int:
    """The pid of pg_cron's launcher as the server sees it (``pg_stat_activity``); it starts a
    moment after the server does."""
    deadline = time.monotonic() + timeout
    while True:
        rows = conn.execute(
            "select pid from pg_stat_activity where backend_type = %s", (LAUNCHER,)
        ).fetchall()
        if len(rows) == 1:
            return int(rows[0][0])
        if len(rows) > 1:
            raise ScaleError(f"{len(rows)} backends of type {LAUNCHER!r}: expected one")
        if time.monotonic() >= deadline:
            raise ScaleError(f"no backend of type {LAUNCHER!r} in pg_stat_activity")
        time.sleep(0.2)


@dataclass
class LauncherProcess:
    """pg_cron's launcher as a process of this machine: its CPU time and memory from /proc."""

    pid: int  # in pg_stat_activity
    host_pid: int  # in this machine's /proc (the same outside a container)
    how: str  # how it was found
    _read: Callable[[str], str] = field(repr=False)

    def read(self, name: str) -> str:
        """The text of ``/proc/<pid>/<name>``."""
        return self._read(name)

    def cpu_seconds(self) -> float:
        """utime + stime so far, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
        stat = self.read("stat")
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; field 3 is fields[0]
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def memory_kb(self) -> dict[str, int]:
        """VmRSS, VmHWM (peak RSS), RssAnon and RssShmem in kB, from /proc/<pid>/status."""
        out: dict[str, int] = {}
        for line in self.read("status").splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssShmem"):
                out[key] = int(rest.split()[0])
        if "VmRSS" not in out:
            raise ScaleError(f"no VmRSS in /proc/{self.host_pid}/status ({self.how})")
        return out

    def check(self) -> None:
        """Still the launcher (not a process that reused its pid)."""
        if LAUNCHER not in self.read("cmdline").replace("\0", " "):
            raise ScaleError(f"process {self.host_pid} ({self.how}) is no longer {LAUNCHER!r}")


def _host_reader(host_pid: int) -> Callable[[str], str]:
    return lambda name: Path(f"/proc/{host_pid}/{name}").read_text(errors="replace")


def _status_field(text: str, key: str) -> list[str]:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].split()
    return []


def _local_launcher(pid: int, server: Any) -> LauncherProcess:
    read = _host_reader(pid)
    try:
        cmdline = read("cmdline").replace("\0", " ")
        status = read("status")
    except OSError as exc:
        raise ScaleError(
            f"the launcher's pid {pid} is not a process of this machine ({exc}): "
            "is the server on another host or in a container?"
        ) from exc
    if LAUNCHER not in cmdline:
        raise ScaleError(f"process {pid} of this machine is {cmdline.strip()!r}, not {LAUNCHER!r}")
    how = "local /proc"
    datadir = getattr(server, "datadir", None)
    if datadir is not None:
        with contextlib.suppress(OSError):
            postmaster = int((Path(datadir) / "postmaster.pid").read_text().split()[0])
            parent = int(_status_field(status, "PPid")[0])
            if parent != postmaster:
                raise ScaleError(
                    f"process {pid} is a launcher of another server (parent {parent}, "
                    f"this server's postmaster {postmaster})"
                )
            how = f"local /proc (postmaster {postmaster})"
    return LauncherProcess(pid, pid, how, read)


def _container_launcher(pid: int, container: Any) -> LauncherProcess:
    """The launcher of a server in a container: the host pid ``docker top`` gives, matched by the
    pid in the container's namespace (NSpid); through ``docker exec`` when this machine's /proc
    does not show the container's processes."""
    container.reload()
    top = container.top()
    titles = [t.upper() for t in top.get("Titles", [])]
    pid_col = titles.index("PID")
    cmd_col = titles.index("CMD") if "CMD" in titles else len(titles) - 1
    candidates = [int(p[pid_col]) for p in top.get("Processes") or [] if LAUNCHER in p[cmd_col]]
    for host_pid in candidates:
        with contextlib.suppress(OSError, ValueError, IndexError):
            status = Path(f"/proc/{host_pid}/status").read_text()
            nspid = _status_field(status, "NSpid")
            if nspid and int(nspid[-1]) == pid:
                return LauncherProcess(
                    pid, host_pid, f"docker top + host /proc (NSpid {' '.join(nspid)})",
                    _host_reader(host_pid),
                )  # fmt: skip

    def read_in_container(name: str) -> str:
        result = container.exec_run(["cat", f"/proc/{pid}/{name}"], user="postgres")
        if result.exit_code != 0:
            raise ScaleError(f"docker exec cat /proc/{pid}/{name}: {result.output!r}")
        return bytes(result.output).decode(errors="replace")

    launcher = LauncherProcess(pid, pid, "docker exec (the container's /proc)", read_in_container)
    launcher.check()
    return launcher


def find_launcher(conn: psycopg.Connection[Any], server: Any = None) -> LauncherProcess:
    """pg_cron's launcher of the server ``conn`` is connected to. ``server``: the throwaway
    server object (a local ``Cluster``, a ``ContainerCluster``) or None (a server of this
    machine, e.g. ``SCHEDULER_TEST_DSN``)."""
    pid = launcher_backend_pid(conn)
    wrapped = getattr(server, "_wrapped", None)
    launcher = _container_launcher(pid, wrapped()) if wrapped else _local_launcher(pid, server)
    launcher.cpu_seconds()
    launcher.memory_kb()
    return launcher


# -- writes ----------------------------------------------------------------------------------------------


def bulk_register(conn: psycopg.Connection[Any], rows: int, days: float) -> dict[str, Any]:
    """``rows`` upcoming meetings, end times evenly over ``days`` days from 10 minutes ahead, in
    one ``insert … select`` through the triggers: seconds, µs per row, our jobs afterwards."""
    jobs_before = count_our_jobs(conn)
    started = time.perf_counter()
    conn.execute(
        "insert into public.meetings (title, end_time) "
        "select 'scale ' || g, now() + %s::interval "
        "       + (g - 1) * (%s::double precision * interval '1 day' / %s) "
        "from generate_series(1, %s) g",
        (f"{FIRST_END.total_seconds()} seconds", days, rows, rows),
    )
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "days": days,
        "seconds": seconds,
        "us_per_row": seconds / rows * 1e6 if rows else None,
        "jobs_added": count_our_jobs(conn) - jobs_before,
    }


class SteadyWrites(threading.Thread):
    """Single-row inserts into public.meetings at ``rate`` a second (each its own transaction,
    paced by the clock; end times within the bulk rows' spread) until stopped."""

    def __init__(self, dsn: str, rate: float, days: float) -> None:
        super().__init__(name="steady-writes", daemon=True)
        self.dsn, self.rate, self.days = dsn, rate, days
        self.stop_event = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.dsn) as conn:
                next_at = time.monotonic()
                i = 0
                while not self.stop_event.is_set():
                    i += 1
                    # a deterministic walk over the spread: every end time at least 10 min ahead
                    ahead = FIRST_END.total_seconds() + (i * 7919 % 86400) * self.days
                    conn.execute(
                        "insert into public.meetings (title, end_time) "
                        "values ('scale write', now() + %s * interval '1 second')",
                        (ahead,),
                    )
                    self.count += 1
                    next_at += 1.0 / self.rate
                    self.stop_event.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)
        if self.error is not None:
            raise ScaleError(f"the steady writes failed: {self.error}") from self.error


@contextlib.contextmanager
def steady_writes(dsn: str, rate: float, days: float) -> Iterator[SteadyWrites]:
    writer = SteadyWrites(dsn, rate, days)
    writer.start()
    try:
        yield writer
    finally:
        writer.stop()


# -- the launcher's CPU ------------------------------------------------------------------------------------


def launcher_cpu(launcher: LauncherProcess, window: float) -> dict[str, Any]:
    """The launcher's CPU time over ``window`` seconds of wall time, as % of one core, and its
    memory at the end."""
    launcher.check()
    cpu0, wall0 = launcher.cpu_seconds(), time.monotonic()
    time.sleep(window)
    cpu1, wall1 = launcher.cpu_seconds(), time.monotonic()
    launcher.check()
    wall = wall1 - wall0
    return {
        "window_s": wall,
        "cpu_s": cpu1 - cpu0,
        "percent_of_core": (cpu1 - cpu0) / wall * 100.0,
        "memory_kb": launcher.memory_kb(),
    }


def launcher_cpu_under_writes(
    launcher: LauncherProcess, dsn: str, window: float, rate: float, days: float
) -> dict[str, Any]:
    """launcher_cpu() while SteadyWrites inserts ``rate`` rows a second (one second of writes
    before the window opens)."""
    with steady_writes(dsn, rate, days) as writer:
        time.sleep(1.0)
        before = writer.count
        out = launcher_cpu(launcher, window)
        out["writes"] = writer.count - before
    out["writes_per_s"] = out["writes"] / out["window_s"]
    return out


# -- probes ------------------------------------------------------------------------------------------------


def db_clock(conn: psycopg.Connection[Any]) -> dt.datetime:
    row = conn.execute("select clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def probe_end_times(start: dt.datetime, count: int, spread: float) -> list[dt.datetime]:
    """``count`` end times evenly over ``spread`` seconds from ``start``, each off a whole
    second by 137 ms plus a few ms and never on a minute boundary."""
    step = spread / max(1, count)
    out = []
    for i in range(count):
        when = start + dt.timedelta(seconds=i * step, milliseconds=137 + (i * 37) % 400)
        if when.second == 0 and when.microsecond < 1000:
            when += dt.timedelta(milliseconds=1)
        out.append(when)
    return out


def insert_probes(conn: psycopg.Connection[Any], ends: Sequence[dt.datetime]) -> list[uuid.UUID]:
    rows = conn.execute(
        "insert into public.meetings (title, end_time) "
        "select 'scale probe ' || i, e from unnest(%s::timestamptz[]) with ordinality t(e, i) "
        "returning id",
        (list(ends),),
    ).fetchall()
    return [r[0] for r in rows]


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def collect_probes(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID], deadline: dt.datetime
) -> dict[str, Any]:
    """Wait (by the database's clock) until every probe is done or ``deadline``; then lateness =
    ``completed_at - end_time`` of their completion events: p50 and max overall and per path,
    and how many were completed before their end time (early) or not at all."""
    ids = list(ids)
    while True:
        row = conn.execute(
            "select count(*) from public.meetings where id = any(%s) and status = 'upcoming'",
            (ids,),
        ).fetchone()
        if not row or row[0] == 0 or db_clock(conn) >= deadline:
            break
        time.sleep(0.25)
    events = conn.execute(
        "select e.meeting_id, e.path, extract(epoch from e.completed_at - e.end_time)::float8, "
        "       e.end_time = m.end_time "
        "from scheduler.completion_events e join public.meetings m on m.id = e.meeting_id "
        "where e.meeting_id = any(%s)",
        (ids,),
    ).fetchall()
    done = conn.execute(
        "select count(*) from public.meetings where id = any(%s) and status = 'done'", (ids,)
    ).fetchone()
    lateness = sorted(float(r[2]) for r in events)
    by_path: dict[str, list[float]] = {}
    for _id, path, late, _same in events:
        by_path.setdefault(str(path), []).append(float(late))
    return {
        "probes": len(ids),
        "done": int(done[0]) if done else 0,
        "events": len(events),
        "events_per_probe_max": max((sum(1 for r in events if r[0] == i) for i in ids), default=0),
        "end_time_matches": all(bool(r[3]) for r in events),
        "not_done": len(ids) - (int(done[0]) if done else 0),
        "early": sum(1 for x in lateness if x < 0),
        "p50_s": percentile(lateness, 50),
        "max_s": lateness[-1] if lateness else None,
        "min_s": lateness[0] if lateness else None,
        "by_path": {
            path: {"count": len(v), "p50_s": percentile(sorted(v), 50), "max_s": max(v)}
            for path, v in sorted(by_path.items())
        },
        "lateness_s": lateness,
    }


def run_probes(conn: psycopg.Connection[Any], opts: Options) -> dict[str, Any]:
    """--probes meetings ending over --probe-spread seconds from --probe-lead ahead, into the
    otherwise idle server, until all are done (or spread + grace)."""
    start = db_clock(conn) + dt.timedelta(seconds=opts.probe_lead)
    ends = probe_end_times(start.replace(microsecond=0), opts.probes, opts.probe_spread)
    ids = insert_probes(conn, ends)
    deadline = ends[-1] + dt.timedelta(seconds=opts.probe_grace)
    return collect_probes(conn, ids, deadline)


# -- one configuration --------------------------------------------------------------------------------


def measure(
    conn: psycopg.Connection[Any],
    dsn: str,
    server: Any,
    opts: Options,
    horizon: str | None,
) -> dict[str, Any]:
    """Every figure of one row of the table on a migrated server with no meeting of ours."""
    out: dict[str, Any] = {
        "postgresql": server_version(conn),
        "pg_cron": pg_cron_version(conn),
        "horizon": horizon_label(horizon),
    }
    set_horizon(conn, horizon)
    out["sweep"] = set_sweep(conn, opts.sweep)
    launcher = find_launcher(conn, server)
    out["launcher"] = {"pid": launcher.pid, "host_pid": launcher.host_pid, "how": launcher.how}
    out["memory_kb_empty"] = launcher.memory_kb()
    log(f"  launcher pid {launcher.pid} ({launcher.how}); sweep {out['sweep']}")

    out["registration"] = bulk_register(conn, opts.rows, opts.days)
    reg = out["registration"]
    log(
        f"  registered {reg['rows']:,} rows in {reg['seconds']:.2f} s "
        f"({reg['us_per_row']:.1f} us/row), {reg['jobs_added']:,} jobs"
    )
    started = time.perf_counter()
    cpu0 = launcher.cpu_seconds()
    conn.execute("vacuum analyze public.meetings, cron.job")
    time.sleep(opts.settle)
    out["settle"] = {
        "seconds": time.perf_counter() - started,
        "launcher_cpu_s": launcher.cpu_seconds() - cpu0,
    }
    out["jobs"] = count_our_jobs(conn)

    log(f"  idle window {opts.window:.0f} s")
    out["idle"] = launcher_cpu(launcher, opts.window)
    log(f"  launcher {out['idle']['percent_of_core']:.1f}% of a core idle")
    log(f"  {opts.write_rate:g} single-row inserts/s, window {opts.window:.0f} s")
    out["writes"] = launcher_cpu_under_writes(
        launcher, dsn, opts.window, opts.write_rate, opts.days
    )
    log(
        f"  launcher {out['writes']['percent_of_core']:.1f}% of a core under "
        f"{out['writes']['writes_per_s']:.1f} inserts/s"
    )
    log(f"  {opts.probes} probes over {opts.probe_spread:g} s")
    out["probes"] = run_probes(conn, opts)
    log(f"  probes: {probe_text(out['probes'])}")
    out["memory_kb_end"] = launcher.memory_kb()
    return out


# -- servers ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def version_server(version: str) -> Iterator[tuple[Any, str]]:
    """A fresh server of that pg_cron version, migrated to head: (server object, dsn)."""
    if version == "1.4":
        with benchmark_cluster() as (cluster, _settings):
            migrate(cluster.dsn())
            yield cluster, cluster.dsn()
        return
    if version == "1.6":
        from scheduler_admin.testing.container import container_cluster

        with container_cluster(settings=DURABLE_SETTINGS) as server:
            migrate(server.dsn())
            yield server, server.dsn()
        return
    raise ScaleError(f"unknown pg_cron version {version!r}: expected one of {', '.join(VERSIONS)}")


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_config(version: str, horizon: str | None, opts: Options) -> dict[str, Any]:
    load_before, t0 = loadavg(), time.perf_counter()
    with version_server(version) as (server, dsn), connect(dsn) as conn:
        res = measure(conn, dsn, server, opts, horizon)
        res["settings"] = server_settings(conn)
    res["load_before"], res["load_after"] = load_before, loadavg()
    res["wall_s"] = time.perf_counter() - t0
    return res


# -- report ------------------------------------------------------------------------------------------------


def mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f} MB"


def probe_text(p: dict[str, Any]) -> str:
    if not p.get("events"):
        return f"none done of {p.get('probes')}"
    paths = ", ".join(f"{k} {v['count']}" for k, v in p["by_path"].items())
    text = f"p50 {p['p50_s']:.2f} s, max {p['max_s']:.2f} s; early {p['early']}; by path: {paths}"
    if p["not_done"]:
        text += f", **{p['not_done']} not done**"
    return text


def version_label(res: dict[str, Any]) -> str:
    cron = str(res.get("pg_cron", "?")).split("-")[0]
    label = f"{cron} (PG {str(res.get('postgresql', '?')).split('.')[0]})"
    sweep = res.get("sweep")
    if sweep == "unsupported":
        return label
    return f"{label}, sweep {'off' if sweep == 'off' else 'on'}"


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| pg_cron | horizon | upcoming | jobs | bulk registration | launcher CPU idle "
        "| under writes | launcher RSS (peak) | probe lateness |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res in results:
        if "error" in res:
            lines.append(
                f"| {res['version']} | {res['horizon']} | - | - | failed: {res['error']} "
                "| - | - | - | - |"
            )
            continue
        reg, idle, writes = res["registration"], res["idle"], res["writes"]
        mem = idle["memory_kb"]
        lines.append(
            f"| {version_label(res)} | {res['horizon']} | {reg['rows']:,} | {res['jobs']:,} "
            f"| {reg['seconds']:.2f} s, {reg['us_per_row']:.1f} µs/row "
            f"| {idle['percent_of_core']:.1f}% "
            f"| {writes['percent_of_core']:.1f}% ({writes['writes_per_s']:.1f}/s) "
            f"| {mb(mem.get('VmRSS'))} ({mb(res['memory_kb_end'].get('VmHWM'))}) "
            f"| {probe_text(res['probes'])} |"
        )
    return "\n".join(lines)


def _words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--rows",
        type=lambda s: int(s.replace("_", "")),
        default=100_000,
        help="upcoming meetings registered in bulk (default 100,000)",
    )
    parser.add_argument(
        "--days", type=float, default=30.0, help="days their end times are spread over (default 30)"
    )
    parser.add_argument(
        "--versions",
        default="1.4,1.6",
        help="pg_cron versions: 1.4 (local cluster), 1.6 (container lane)",
    )
    parser.add_argument(
        "--sweep",
        choices=("on", "off"),
        default="on",
        help="the seconds sweep on pg_cron 1.5+ (default on, the product's default)",
    )
    parser.add_argument(
        "--horizon",
        default="none",
        help="comma-separated job horizons, 'none' or an interval (default none)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=60.0,
        help="seconds of each CPU window (default 60: one minute boundary in it)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds after the bulk insert before the idle window (default 10)",
    )
    parser.add_argument(
        "--write-rate",
        type=float,
        default=10.0,
        help="single-row inserts a second during the second window (default 10)",
    )
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument(
        "--probe-spread",
        type=float,
        default=50.0,
        help="seconds the probes' end times are spread over (default 50)",
    )
    parser.add_argument("--output", type=Path, help="append the table to this markdown file")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT, help="raw numbers")
    args = parser.parse_args(argv)  # fmt: skip

    versions = _words(args.versions)
    unknown = [v for v in versions if v not in VERSIONS]
    if unknown:
        parser.error(f"unknown version(s) {', '.join(unknown)}; expected {', '.join(VERSIONS)}")
    horizons = [parse_horizon(h) for h in _words(args.horizon)] or [None]
    opts = Options(
        rows=args.rows, days=args.days, window=args.window, settle=args.settle,
        write_rate=args.write_rate, probes=args.probes, probe_spread=args.probe_spread,
        sweep=args.sweep == "on",
    )  # fmt: skip
    argv_used = sys.argv[1:] if argv is None else argv
    command = "python -m benchmarks.scale " + " ".join(shlex.quote(a) for a in argv_used)
    started = utcnow()
    run: dict[str, Any] = {
        "command": command,
        "started": started.isoformat(),
        "options": asdict(opts),
        "versions": versions,
        "horizons": [horizon_label(h) for h in horizons],
        "machine": machine_description(),
        "load_start": loadavg(),
    }
    results: list[dict[str, Any]] = []
    for horizon in horizons:
        for version in versions:
            log(f"pg_cron {version}, horizon {horizon_label(horizon)}: {SERVERS[version]}")
            try:
                res = run_config(version, horizon, opts)
            except Exception as exc:  # report the row, run the others
                log(f"  failed: {type(exc).__name__}: {exc}")
                res = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
            res["version"], res["horizon"] = version, horizon_label(horizon)
            results.append(res)
    run["load_end"] = loadavg()
    run["finished"] = utcnow().isoformat()

    text = table(results)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": run, "results": results}, indent=1, default=str))
    log(f"raw numbers in {args.json}")
    if args.output:
        header = (
            f"\nRun {started:%Y-%m-%d %H:%M} UTC: `{command}`; load average (1/5/15 min) "
            f"{'/'.join(map(str, run['load_start']))} at the start, "
            f"{'/'.join(map(str, run['load_end']))} at the end.\n\n"
        )
        with args.output.open("a") as f:
            f.write(header + text + "\n")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
