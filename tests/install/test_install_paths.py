"""The three ways docs/use-in-your-app.md installs the package into an application, each into a
fresh virtual environment with its dependencies: from a checkout, from the built wheel, from a
git URL. Each installation imports (the fastapi extra too), carries the SQL and the migrations,
runs ``scheduler-admin --help`` and migrates a SQLite store from a directory away from the
checkout. The distributions themselves hold what a published release must."""

from __future__ import annotations

import email.parser
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from docs_helpers import blocks, section
from install_helpers import (
    ROOT,
    Dist,
    assert_installed,
    classified_pythons,
    install,
    interpreter,
    make_venv,
    run,
)

pytestmark = pytest.mark.packaging

PAGE = "docs/use-in-your-app.md"


def test_from_a_checkout_editable(tmp_path: Path) -> None:
    """``pip install -e "/path/to/checkout[fastapi]"``: the package and its SQL and migrations
    are the checkout's own files."""
    (block,) = blocks(section(PAGE, "From a checkout"), "sh")
    assert 'pip install -e "/path/to/scheduler-admin[fastapi]"' in block
    venv = make_venv(tmp_path / "venv")
    install(venv, "-e", f"{ROOT}[fastapi]")
    assert_installed(venv, tmp_path / "app", inside_site_packages=False)


# One interpreter per Python version the classifiers claim; those this machine lacks are not
# collected (CI has its Debian Python, 3.11; a skip would fail CI), so the claim of a version
# no machine here has rests on requires-python and the ruff target alone.
PYTHONS = [
    pytest.param(python, id=f"python{version}")
    for version in classified_pythons()
    if (python := interpreter(version)) is not None
]


@pytest.mark.parametrize("python", PYTHONS)
def test_from_the_built_wheel(dist: Dist, tmp_path: Path, python: str) -> None:
    """``pip install "dist/scheduler_admin-…whl[fastapi]"``: the SQL and the migrations inside
    site-packages, on each Python version the classifiers claim."""
    (block,) = blocks(section(PAGE, "From a built wheel"), "sh")
    assert f"dist/{dist.wheel.name}[fastapi]" in block, "the page names another wheel"
    venv = make_venv(tmp_path / "venv", python)
    install(venv, f"{dist.wheel}[fastapi]")
    found = assert_installed(venv, tmp_path / "app")
    assert ".".join(map(str, found["version"])) in {p.id.removeprefix("python") for p in PYTHONS}


def test_from_a_git_url(tmp_path: Path) -> None:
    """``pip install "scheduler-admin[fastapi] @ git+…"`` from a clone of this repository (its
    last commit: what a git URL serves)."""
    (block,) = blocks(section(PAGE, "From a git URL"), "sh")
    assert re.search(r'pip install "scheduler-admin\[fastapi\] @ git\+https://', block)
    clone = tmp_path / "scheduler-admin.git"
    run(["git", "clone", "--quiet", "--bare", ROOT, clone])
    head = run(["git", "-C", clone, "rev-parse", "HEAD"]).strip()
    venv = make_venv(tmp_path / "venv")
    install(venv, f"scheduler-admin[fastapi] @ git+file://{clone}")
    assert_installed(venv, tmp_path / "app", ref=head)


def _members(names: list[str], prefix: str) -> set[str]:
    return {n.removeprefix(prefix) for n in names if n.startswith(prefix)}


def test_the_distributions_carry_the_sql_the_migrations_and_the_metadata(dist: Dist) -> None:
    """The sdist and the wheel hold every file of ``sql/`` and ``migrations/`` (the wheel inside
    the package), the license, and metadata complete enough to publish."""
    tracked = set(run(["git", "-C", ROOT, "ls-files", "sql", "migrations"]).split())
    on_disk = {
        str(p.relative_to(ROOT)) for d in ("sql", "migrations") for p in (ROOT / d).rglob("*")
    }
    shipped = {n for n in tracked if n in on_disk and not n.endswith(".pyc")}
    assert any(n.startswith("sql/revisions/") for n in shipped)

    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        assert f"{info}/licenses/LICENSE" in names
    in_wheel = _members(names, "scheduler_admin/")
    assert not shipped - in_wheel, sorted(shipped - in_wheel)
    assert not any(n.startswith("scheduler_admin/testing/") for n in names)

    with tarfile.open(dist.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        in_sdist = _members(sdist.getnames(), f"{top}/")
    assert not shipped - in_sdist, sorted(shipped - in_sdist)
    assert {"LICENSE", "README.md", "pyproject.toml", f"docs/{Path(PAGE).name}"} <= in_sdist

    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_all("Project-URL"), "no project URL"
    assert metadata["Keywords"]
    classifiers = metadata.get_all("Classifier") or []
    versions = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r"Python :: 3\.\d+$", c)]
    assert versions == classified_pythons() and "3.11" in versions, classifiers
    assert {"fastapi", "supabase"} <= set(metadata.get_all("Provides-Extra") or [])
