"""A throwaway PostgreSQL server with pg_cron in a container, started through testcontainers.

The second lane of the test suite: the image ``scheduler-test-pg17-cron:latest`` (built by
``scripts/build-pg17-image.sh`` from Debian 13's own postgresql-17 and postgresql-17-cron
packages; ``SCHEDULER_TEST_IMAGE`` names another one). The container uses the host network
(the Docker daemon of CI runs without a bridge) and the server listens on 127.0.0.1 only, on a
free port chosen here. It offers what the tests use of :class:`~.cluster.Cluster`: ``port``,
``database``, ``dsn()``, ``url()``, ``create_database()``, ``stop()`` and ``start()``.

The image is never pulled: when it is missing the start fails and says how to build it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from scheduler_admin.testing.cluster import (
    DEFAULT_DATABASE,
    ClusterError,
    Loopback,
    _free_port,
    server_settings,
)

DEFAULT_IMAGE = "scheduler-test-pg17-cron:latest"
DATADIR = "/tmp/scheduler-data"  # inside the container; kept across stop() and start()
START_TIMEOUT = 90.0

# Runs as the image's postgres user: initdb on the first start only (start() after stop() keeps
# the data), append the settings, then postgres in the foreground as the container's process.
_ENTRYPOINT = r"""
set -e
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    "$bindir/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    printf '\n# throwaway server for scheduler_admin tests\n%s\n' "$SCHEDULER_PG_CONF" \
        >>"$PGDATA/postgresql.conf"
fi
exec "$bindir/postgres" -D "$PGDATA"
"""

# pg_ctl's shutdown modes as the signals postgres takes from them.
_STOP_SIGNALS = {"smart": "SIGTERM", "fast": "SIGINT", "immediate": "SIGQUIT"}


def image_name() -> str:
    return os.environ.get("SCHEDULER_TEST_IMAGE") or DEFAULT_IMAGE


def _docker_client() -> Any:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ClusterError(
            "the container lane needs testcontainers (pip install -e '.[test]')"
        ) from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise ClusterError(
            f"no Docker daemon answers ({exc}); run `make test-image` "
            "(scripts/build-pg17-image.sh starts one)"
        ) from exc
    return client


def _require_image(client: Any, image: str) -> None:
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise ClusterError(
            f"image {image} is missing; build it with `make test-image` "
            "(scripts/build-pg17-image.sh)"
        ) from exc


def container_lane_available() -> bool:
    """Whether a Docker daemon answers and has the test image (the fallback lane)."""
    try:
        _require_image(_docker_client(), image_name())
    except ClusterError:
        return False
    return True


def image_versions(image: str | None = None) -> str:
    """``PostgreSQL <version>, pg_cron <version>`` of the image's packages (for the report
    header), or why they could not be read."""
    image = image or image_name()
    try:
        client = _docker_client()
        _require_image(client, image)
        out = client.containers.run(
            image,
            [
                "sh",
                "-c",
                "postgres=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres; "
                '"$postgres" --version; '
                "dpkg-query -W -f '${Package} ${Version}\\n' 'postgresql-*-cron' 2>/dev/null "
                "|| echo 'pg_cron package unknown'",
            ],
            network_mode="host",
            user="postgres",
            remove=True,
        )
    except ClusterError as exc:
        return f"unavailable: {exc}"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"
    lines = out.decode().strip().splitlines()
    return ", ".join(line.strip() for line in lines if line.strip())


@dataclass
class ContainerCluster(Loopback):
    """A PostgreSQL server in a container. Use :func:`container_cluster`."""

    image: str
    port: int
    database: str = DEFAULT_DATABASE
    preload_pg_cron: bool = True
    settings: Mapping[str, str] = field(default_factory=dict)
    _container: Any = None

    def conf(self) -> dict[str, str]:
        """The settings appended to postgresql.conf: the local cluster's, with JIT off (the image
        leaves LLVM out)."""
        return server_settings(
            port=self.port,
            socket_dir="/tmp",
            database=self.database,
            preload_pg_cron=self.preload_pg_cron,
            extra={"jit": "off", **self.settings},
        )

    def logs(self) -> str:
        if self._container is None:
            return ""
        try:
            text: str = self._container.get_wrapped_container().logs().decode(errors="replace")
        except Exception as exc:
            return f"(no logs: {exc})"
        return text[-4000:]

    def _wrapped(self) -> Any:
        if self._container is None:
            raise ClusterError("the container is not started")
        return self._container.get_wrapped_container()

    def create(self) -> None:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        # Ryuk (testcontainers' reaper) would need an image from a registry; this module removes
        # its container itself (destroy()).
        if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
            testcontainers_config.ryuk_disabled = True
        conf = "\n".join(f"{key} = {value}" for key, value in self.conf().items())
        self._container = (
            DockerContainer(self.image)
            .with_command(["sh", "-c", _ENTRYPOINT])
            .with_env("PGDATA", DATADIR)
            .with_env("SCHEDULER_PG_CONF", conf)
            .with_kwargs(
                network_mode="host",
                user="postgres",
                shm_size="256m",
                labels={"scheduler-admin.test": "1"},
            )
        )
        try:
            self._container.start()
        except Exception as exc:
            raise ClusterError(f"could not start a container from {self.image}: {exc}") from exc
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            wrapped = self._wrapped()
            wrapped.reload()
            if wrapped.status in ("exited", "dead"):
                raise ClusterError(
                    f"the server in {self.image} exited ({wrapped.attrs['State']['ExitCode']}):"
                    f"\n{self.logs()}"
                )
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
            time.sleep(0.2)
        raise ClusterError(
            f"the server in {self.image} did not accept connections within "
            f"{START_TIMEOUT:.0f} s ({last}):\n{self.logs()}"
        )

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down (as ``pg_ctl stop -m mode``); the container stops with it and
        keeps its data for :meth:`start`."""
        wrapped = self._wrapped()
        wrapped.reload()
        if wrapped.status != "running":
            return
        wrapped.kill(signal=_STOP_SIGNALS[mode])
        result = wrapped.wait(timeout=60)
        if mode != "immediate" and result.get("StatusCode") not in (0, None):
            raise ClusterError(f"the server stopped with {result}:\n{self.logs()}")

    def start(self) -> None:
        """Start the stopped server again (same data, same port) and wait until it answers."""
        self._wrapped().start()
        self._wait_ready()

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))

    def destroy(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.stop(force=True, delete_volume=True)
            self._container = None


@contextlib.contextmanager
def container_cluster(
    *,
    database: str = DEFAULT_DATABASE,
    preload_pg_cron: bool = True,
    settings: Mapping[str, str] | None = None,
    image: str | None = None,
) -> Iterator[ContainerCluster]:
    """Start a server in a container with ``database`` created (and pg_cron preloaded for it);
    remove the container after."""
    image = image or image_name()
    client = _docker_client()
    _require_image(client, image)
    client.close()
    cluster = ContainerCluster(
        image=image,
        port=_free_port(),
        database=database,
        preload_pg_cron=preload_pg_cron,
        settings=dict(settings or {}),
    )
    try:
        cluster.create()
        cluster.create_database(database)
        yield cluster
    finally:
        cluster.destroy()
