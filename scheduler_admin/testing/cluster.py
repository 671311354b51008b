"""A throwaway PostgreSQL cluster with pg_cron preloaded, started from local binaries.

Used by the test suite and the benchmarks. PostgreSQL refuses to run as root, so when the
current user is root the cluster is created and run as the ``postgres`` OS user (override
with ``SCHEDULER_TEST_PG_USER``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE = "scheduler_test"


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created or started."""


def find_bindir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None when there is none.

    Order: ``SCHEDULER_TEST_PG_BINDIR``; the newest ``/usr/lib/postgresql/*/bin`` (Debian);
    ``pg_ctl`` on ``PATH``.
    """
    explicit = os.environ.get("SCHEDULER_TEST_PG_BINDIR")
    if explicit:
        return Path(explicit)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def pg_cron_available(bindir: Path) -> bool:
    """True when the pg_cron library is installed for the PostgreSQL of ``bindir``."""
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        pkglibdir = subprocess.run(
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if pkglibdir:
            return (Path(pkglibdir) / "pg_cron.so").exists()
    return (bindir.parent / "lib" / "pg_cron.so").exists()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_settings(
    *,
    port: int,
    socket_dir: str,
    database: str,
    preload_pg_cron: bool,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The settings a throwaway test server appends to postgresql.conf: loopback only, fast and
    not durable, UTC, and pg_cron preloaded for ``database`` (``extra`` last, overriding)."""
    conf = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{socket_dir}'",
        "max_connections": "200",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "log_min_messages": "warning",
        "log_timezone": "'UTC'",
        "TimeZone": "'UTC'",
    }
    if preload_pg_cron:
        conf.update(
            {
                "shared_preload_libraries": "'pg_cron'",
                "cron.database_name": f"'{database}'",
                "cron.host": "'127.0.0.1'",
            }
        )
    conf.update(extra)
    return conf


class Loopback:
    """Connection strings of a throwaway server listening on 127.0.0.1 (trust auth)."""

    port: int
    database: str

    def dsn(self, dbname: str | None = None, user: str = "postgres") -> str:
        return (
            f"host=127.0.0.1 port={self.port} user={user} "
            f"dbname={dbname or self.database} connect_timeout=10"
        )

    def url(self, dbname: str | None = None, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname or self.database}"


@dataclass
class Cluster(Loopback):
    """A PostgreSQL cluster in a temporary directory. Use :func:`throwaway_cluster`."""

    bindir: Path
    root: Path
    port: int
    database: str = DEFAULT_DATABASE
    preload_pg_cron: bool = True
    settings: Mapping[str, str] = field(default_factory=dict)
    os_user: str | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "postgresql.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise ClusterError(
                f"{' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{log[-4000:]}"
            )
        return result

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.datadir),
            "-U", "postgres",
            "--auth=trust",
            "-E", "UTF8",
            "--locale=C",
        )  # fmt: skip
        conf = server_settings(
            port=self.port,
            socket_dir=str(self.root),
            database=self.database,
            preload_pg_cron=self.preload_pg_cron,
            extra=self.settings,
        )
        with (self.datadir / "postgresql.conf").open("a") as f:
            f.write("\n# throwaway cluster for scheduler_admin tests\n")
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> None:
        self._run(
            str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f'create database "{name}"',
        )  # fmt: skip

    def destroy(self) -> None:
        with contextlib.suppress(ClusterError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SCHEDULER_TEST_PG_USER", "postgres")
    try:
        pwd.getpwnam(name)
    except KeyError as exc:
        raise ClusterError(
            f"running as root and OS user {name!r} does not exist; PostgreSQL refuses to run "
            "as root. Create it (useradd --system postgres) or set SCHEDULER_TEST_PG_USER."
        ) from exc
    return name


@contextlib.contextmanager
def throwaway_cluster(
    *,
    database: str = DEFAULT_DATABASE,
    preload_pg_cron: bool = True,
    settings: Mapping[str, str] | None = None,
    bindir: Path | None = None,
) -> Iterator[Cluster]:
    """Start a cluster with ``database`` created (and pg_cron preloaded for it); remove it after."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise ClusterError("no PostgreSQL binaries found (initdb/pg_ctl)")
    os_user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="scheduler-pg-"))
    if os_user:
        entry = pwd.getpwnam(os_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    cluster = Cluster(
        bindir=bindir,
        root=root,
        port=_free_port(),
        database=database,
        preload_pg_cron=preload_pg_cron,
        settings=dict(settings or {}),
        os_user=os_user,
    )
    try:
        cluster.init()
        cluster.start()
        cluster.create_database(database)
        yield cluster
    finally:
        cluster.destroy()
