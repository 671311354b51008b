"""Installing the package as an application would (docs/use-in-your-app.md): fresh virtual
environments, pip, and what an installation must hold.

pip comes from the package index configured for this machine (``PIP_INDEX_URL``,
``PIP_FIND_LINKS``, pip's cache): the dependencies are installed for real, never ``--no-deps``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# what the environment of the test run must not hand to an installed application: the suite's
# own database, Supabase and scheduler settings, and the virtual environment running pytest
_LEAKS = re.compile(r"^(SCHEDULER_|SUPABASE_|DATABASE_URL$|ENVIRONMENT$|ENABLE_MEETING_)")
_DROPPED = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the suite's settings (an application's, fresh)."""
    env = {k: v for k, v in os.environ.items() if not _LEAKS.match(k) and k not in _DROPPED}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def run(args: list[str | Path], *, cwd: Path | None = None, timeout: float = 300) -> str:
    """Run a command; its output, or a failure that shows it."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name


def make_venv(path: Path, python: str = sys.executable, *, with_pip: bool = False) -> Venv:
    """A fresh virtual environment. Without its own pip (the quicker default), :func:`install`
    drives this process's pip into it (``pip --python``)."""
    args = [python, "-m", "venv", str(path)]
    if not with_pip:
        args.insert(3, "--without-pip")
    run(args)
    return Venv(path)


def install(venv: Venv, *requirements: str | Path, own_pip: bool = False) -> float:
    """``pip install`` the requirements with their dependencies into ``venv``; the seconds it
    took."""
    pip = (
        [venv.python, "-m", "pip"]
        if own_pip
        else [sys.executable, "-m", "pip", "--python", venv.python]
    )
    started = time.monotonic()
    run([*pip, "install", "--quiet", *requirements])
    return time.monotonic() - started


LAYOUT = r"""
import json, sys, sysconfig
from pathlib import Path

import scheduler_admin
import scheduler_admin.fastapi  # the fastapi extra
from scheduler_admin import schema

print(json.dumps({
    "version": list(sys.version_info[:2]),
    "package": str(Path(scheduler_admin.__file__).resolve().parent),
    "purelib": str(Path(sysconfig.get_paths()["purelib"]).resolve()),
    "sql_postgres": str(schema.sql_dir("postgres")),
    "sql_sqlite": str(schema.sql_dir("sqlite")),
    "migrations": str(schema.migrations_dir()),
    "postgres_files": schema.schema_files("postgres"),
    "sqlite_files": schema.schema_files("sqlite"),
    "revisions": sorted(p.name for p in (schema.migrations_dir() / "versions").glob("*.py")),
    "env_py": (schema.migrations_dir() / "env.py").is_file(),
}))
"""


def layout(venv: Venv, cwd: Path) -> dict[str, Any]:
    """Where the installed package finds its SQL and migrations (imported from ``cwd``, away
    from the checkout)."""
    result: dict[str, Any] = json.loads(run([venv.python, "-c", LAYOUT], cwd=cwd))
    return result


def checkout_files(ref: str | None = None) -> dict[str, list[str]]:
    """The schema files and alembic revisions of the working tree, or of a commit."""

    def names(folder: str, pattern: str) -> list[str]:
        if ref is None:
            return sorted(p.name for p in (ROOT / folder).glob(pattern))
        listed = run(["git", "-C", ROOT, "ls-tree", "--name-only", f"{ref}:{folder}"])
        return sorted(n for n in listed.split() if Path(n).match(pattern))

    return {
        "postgres_files": names("sql/postgres", "[0-9]*.sql"),
        "sqlite_files": names("sql/sqlite", "[0-9]*.sql"),
        "revisions": names("migrations/versions", "*.py"),
    }


def assert_installed(
    venv: Venv, work: Path, *, inside_site_packages: bool = True, ref: str | None = None
) -> dict[str, Any]:
    """The installed package imports (the fastapi extra too), carries ``sql/`` and
    ``migrations/`` (inside site-packages, unless editable), ``scheduler-admin --help`` runs,
    and ``scheduler-admin migrate`` migrates a SQLite store from ``work``, away from the
    checkout."""
    work.mkdir(parents=True, exist_ok=True)
    found = layout(venv, work)
    package = Path(found["package"])
    if inside_site_packages:
        assert package == Path(found["purelib"]) / "scheduler_admin", found
        for key in ("sql_postgres", "sql_sqlite", "migrations"):
            assert Path(found[key]).is_relative_to(package), (key, found)
    else:  # editable: the checkout's files
        assert package == ROOT / "scheduler_admin", found
        assert Path(found["sql_postgres"]) == ROOT / "sql" / "postgres", found
        assert Path(found["migrations"]) == ROOT / "migrations", found
    assert found["env_py"], found
    expected = checkout_files(ref)
    for key, names in expected.items():
        assert names, (key, "nothing in the checkout to compare with")
        assert found[key] == names, (key, found[key], names)

    assert "migrate" in run([venv.bin("scheduler-admin"), "--help"], cwd=work)
    url = f"sqlite:///{work / 'store.db'}"
    run([venv.bin("scheduler-admin"), "--database-url", url, "migrate"], cwd=work)
    jobs = run([venv.bin("scheduler-admin"), "--database-url", url, "list-jobs"], cwd=work)
    assert "meeting-status-reconcile" in jobs, jobs
    return found


def classified_pythons() -> list[str]:
    """The Python versions pyproject.toml's classifiers claim (``3.10``, ``3.11``)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)


def interpreter(version: str) -> str | None:
    """A Python of that version on this machine: this one, ``pythonX.Y`` on PATH, or one of
    pyenv's (``$PYENV_ROOT/versions/X.Y.*``); None when there is none."""
    if "{}.{}".format(*sys.version_info[:2]) == version:
        return sys.executable
    candidates = [f"python{version}"]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob(f"{version}.*"))]
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return candidate
    return None


@dataclass(frozen=True)
class Dist:
    """The distributions of one ``python -m build`` (conftest.py's ``dist`` fixture; here, not
    in conftest.py, since another directory's conftest module may be the one imported under
    that name when several test directories run together)."""

    wheel: Path
    sdist: Path
    seconds: float  # how long `python -m build` took
