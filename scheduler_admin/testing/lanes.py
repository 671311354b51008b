"""Which PostgreSQL the tests start: the lane chosen by ``SCHEDULER_TEST_SERVER``.

* ``local``: a throwaway cluster from the local PostgreSQL binaries (:mod:`.cluster`); the test
  suite prefers ``SCHEDULER_TEST_DSN`` when it is set.
* ``container``: a server in the image ``SCHEDULER_TEST_IMAGE`` (default
  ``scheduler-test-pg17-cron:latest``) through testcontainers (:mod:`.container`).

Without ``SCHEDULER_TEST_SERVER`` the order is ``SCHEDULER_TEST_DSN``, the local binaries (with
pg_cron), then the container when a Docker daemon answers and has the image; with none of them
the local lane is chosen, and its PostgreSQL tests skip (or fail under
``SCHEDULER_REQUIRE_POSTGRES``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from scheduler_admin.testing.cluster import (
    DEFAULT_DATABASE,
    ClusterError,
    find_bindir,
    pg_cron_available,
    throwaway_cluster,
)

LANES = ("local", "container")


class ThrowawayServer(Protocol):
    """What the tests use of a throwaway server, whichever lane started it."""

    port: int
    database: str

    def dsn(self, dbname: str | None = None, user: str = "postgres") -> str: ...

    def url(self, dbname: str | None = None, user: str = "postgres") -> str: ...

    def create_database(self, name: str) -> None: ...

    def stop(self, mode: str = "fast") -> None: ...

    def start(self) -> None: ...


def server_lane() -> str:
    """``local`` or ``container`` from ``SCHEDULER_TEST_SERVER`` (anything else is an error);
    unset, the first that is there of the DSN, the local binaries and the container."""
    chosen = (os.environ.get("SCHEDULER_TEST_SERVER") or "").strip().lower()
    if chosen:
        if chosen not in LANES:
            raise ClusterError(
                f"SCHEDULER_TEST_SERVER={chosen!r}: expected one of {', '.join(LANES)}"
            )
        return chosen
    return _default_lane()


@functools.cache
def _default_lane() -> str:
    if os.environ.get("SCHEDULER_TEST_DSN"):
        return "local"
    bindir = find_bindir()
    if bindir is not None and pg_cron_available(bindir):
        return "local"
    from scheduler_admin.testing.container import container_lane_available

    return "container" if container_lane_available() else "local"


def _local_bindir() -> Path:
    bindir = find_bindir()
    if bindir is None:
        raise ClusterError("no PostgreSQL binaries found (install postgresql-15)")
    if not pg_cron_available(bindir):
        raise ClusterError(f"pg_cron is not installed for {bindir} (install postgresql-15-cron)")
    return bindir


@contextlib.contextmanager
def throwaway_server(
    *,
    database: str = DEFAULT_DATABASE,
    preload_pg_cron: bool = True,
    settings: Mapping[str, str] | None = None,
) -> Iterator[ThrowawayServer]:
    """Start a throwaway server of the chosen lane; raise ClusterError when it cannot start."""
    if server_lane() == "container":
        from scheduler_admin.testing.container import container_cluster

        with container_cluster(
            database=database, preload_pg_cron=preload_pg_cron, settings=settings
        ) as server:
            yield server
        return
    bindir = _local_bindir() if preload_pg_cron else find_bindir()
    if bindir is None:
        raise ClusterError("no PostgreSQL binaries found (install postgresql-15)")
    with throwaway_cluster(
        bindir=bindir, database=database, preload_pg_cron=preload_pg_cron, settings=settings
    ) as cluster:
        yield cluster


def _local_pg_cron_version(bindir: Path) -> str:
    """The version of the pg_cron package installed for ``bindir`` (Debian), else of its
    extension script."""
    major = bindir.parent.name
    with contextlib.suppress(OSError):
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}", f"postgresql-{major}-cron"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        sharedir = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        control = Path(sharedir) / "extension" / "pg_cron.control"
        if control.exists():
            for line in control.read_text().splitlines():
                if line.startswith("default_version"):
                    return "pg_cron extension " + line.split("=", 1)[1].strip().strip("'")
    return "pg_cron version unknown"


def describe_lane() -> str:
    """One line for pytest's header: the lane, the server version and the pg_cron version."""
    try:
        lane = server_lane()
    except ClusterError as exc:
        return f"postgres: {exc}"
    if lane == "container":
        from scheduler_admin.testing.container import image_name, image_versions

        image = image_name()
        return f"postgres: container lane, image {image} ({image_versions(image)})"
    if os.environ.get("SCHEDULER_TEST_DSN"):
        return "postgres: local lane, SCHEDULER_TEST_DSN"
    bindir = find_bindir()
    if bindir is None:
        return "postgres: local lane, no local binaries (PostgreSQL tests will be skipped)"
    version = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    cron = _local_pg_cron_version(bindir) if pg_cron_available(bindir) else "pg_cron MISSING"
    return f"postgres: local lane, throwaway cluster from {bindir} ({version}, {cron})"
