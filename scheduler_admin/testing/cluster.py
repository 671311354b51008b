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
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE = "scheduler_test"
LOOPBACK = "127.0.0.1"  # where a throwaway server listens
STANDBY_LOOPBACK = "127.0.0.2"  # where the standby of primary_and_standby() listens (Linux)


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
    listen: str = LOOPBACK,
) -> dict[str, str]:
    """The settings a throwaway test server appends to postgresql.conf: loopback only (``listen``),
    fast and not durable, UTC, and pg_cron preloaded for ``database`` (``extra`` last,
    overriding)."""
    conf = {
        "listen_addresses": f"'{listen}'",
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
    """Connection strings of a throwaway server listening on a loopback address (trust auth):
    127.0.0.1, or another one for the standby of :func:`primary_and_standby`."""

    port: int
    database: str
    host: str = LOOPBACK

    def dsn(self, dbname: str | None = None, user: str = "postgres") -> str:
        return (
            f"host={self.host} port={self.port} user={user} "
            f"dbname={dbname or self.database} connect_timeout=10"
        )

    def url(self, dbname: str | None = None, user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname or self.database}"


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
    host: str = LOOPBACK

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
            listen=self.host,
        )
        self._append_settings("throwaway cluster for scheduler_admin tests", conf)

    def _append_settings(self, title: str, conf: Mapping[str, str]) -> None:
        with (self.datadir / "postgresql.conf").open("a") as f:
            f.write(f"\n# {title}\n")
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
            str(self.bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", "postgres",
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f'create database "{name}"',
        )  # fmt: skip

    def promote(self) -> None:
        """Promote a standby to primary; return once it accepts writes."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60", "promote")

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


# -- a primary and a streaming standby (tests/postgres/test_failover.py) ------------------------


def replication_settings(*, cron_hosts: str) -> dict[str, str]:
    """What a primary and its standby add to :func:`server_settings`: WAL for a standby and
    senders for it (PostgreSQL's defaults, written out), a hot standby, and ``cron.host`` naming
    ``cron_hosts``. pg_cron stores ``cron.host`` and the port with each job (``cron.job``'s
    ``nodename`` and ``nodeport``) and the promoted standby runs the jobs it replicated with
    them, so that pair of values must reach whichever server is primary: on two machines
    ``localhost`` and one port; on one machine a list of both addresses, one port."""
    return {
        "wal_level": "replica",
        "max_wal_senders": "4",
        "wal_keep_size": "'64MB'",
        "hot_standby": "on",
        "cron.host": f"'{cron_hosts}'",
    }


def _free_port_on(*hosts: str) -> int:
    """A port that nothing listens on at any of ``hosts`` (now)."""
    for _ in range(20):
        port = _free_port()
        with contextlib.ExitStack() as stack:
            try:
                for host in hosts:
                    s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    s.bind((host, port))
            except OSError:
                continue
            return port
    raise ClusterError(f"no port is free on all of {', '.join(hosts)}")


def _reachable(directory: Path, os_user: str | None) -> None:
    """Let ``os_user`` reach what is made in ``directory``: search permission for others (not
    listing) on it and on each directory above it, up to the system's temporary directory
    (pytest makes its base directory 0700, and makes it so again on its next run)."""
    if os_user is None:
        return
    tmp = Path(tempfile.gettempdir()).resolve()
    directory = directory.resolve()
    if tmp not in directory.parents:
        raise ClusterError(
            f"{directory} is not under {tmp}: running as root, the cluster runs as {os_user!r}, "
            "which could not reach it"
        )
    for d in (directory, *directory.parents):
        if d == tmp:
            break
        mode = d.stat().st_mode
        if not mode & stat.S_IXOTH:
            d.chmod(mode | stat.S_IXOTH)


def _new_root(prefix: str, parent: Path | None, os_user: str | None) -> Path:
    if parent is not None:
        _reachable(parent, os_user)
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    if os_user:
        entry = pwd.getpwnam(os_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    return root


@contextlib.contextmanager
def primary_and_standby(
    *,
    database: str = DEFAULT_DATABASE,
    parent: Path | None = None,
    settings: Mapping[str, str] | None = None,
    bindir: Path | None = None,
) -> Iterator[tuple[Cluster, Cluster]]:
    """A primary with ``database`` created and pg_cron preloaded for it, and a hot standby
    streaming from it, made with ``pg_basebackup -R`` (``initdb --auth=trust`` already lets
    127.0.0.1 connect for replication), started and caught up with the primary's set-up.

    As two machines would, both use one port with the same settings: the primary listens on
    127.0.0.1, the standby on 127.0.0.2 (every 127.x address is the loopback on Linux), and
    ``cron.host`` lists both, so that the jobs the standby replicated reach it once it is
    promoted (:func:`replication_settings`). Their directories are made in ``parent`` (default:
    the system's temporary directory); on exit both are stopped at once and their data
    directories removed, their server logs (``postgresql.log``) kept."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise ClusterError("no PostgreSQL binaries found (initdb/pg_ctl)")
    os_user = _unprivileged_user()
    hosts = (LOOPBACK, STANDBY_LOOPBACK)
    port = _free_port_on(*hosts)
    conf = {**replication_settings(cron_hosts=",".join(hosts)), **(settings or {})}
    primary = Cluster(
        bindir=bindir,
        root=_new_root("scheduler-pg-primary-", parent, os_user),
        port=port,
        database=database,
        settings=conf,
        os_user=os_user,
    )
    standby = Cluster(
        bindir=bindir,
        root=_new_root("scheduler-pg-standby-", parent, os_user),
        port=port,
        database=database,
        settings=conf,
        os_user=os_user,
        host=STANDBY_LOOPBACK,
    )
    try:
        primary.init()
        primary.start()
        primary.create_database(database)
        standby._run(
            str(bindir / "pg_basebackup"),
            "-h", primary.host, "-p", str(primary.port), "-U", "postgres",
            "-D", str(standby.datadir),
            "-R",  # standby.signal, and primary_conninfo in postgresql.auto.conf
            "-X", "stream", "-c", "fast",
        )  # fmt: skip
        # the primary's settings came with the copy; the standby's own address and socket last
        standby._append_settings(
            f"standby of the throwaway cluster on {primary.host}:{primary.port}",
            server_settings(
                port=port,
                socket_dir=str(standby.root),
                database=database,
                preload_pg_cron=True,
                extra=conf,
                listen=standby.host,
            ),
        )
        standby.start()
        yield primary, standby
    finally:
        for cluster in (standby, primary):
            with contextlib.suppress(ClusterError):
                cluster.stop("immediate")
            shutil.rmtree(cluster.datadir, ignore_errors=True)
