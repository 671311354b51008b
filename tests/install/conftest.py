"""The distributions, built once per session as docs/use-in-your-app.md builds them."""

from __future__ import annotations

import sys
import time

import pytest
from install_helpers import ROOT, Dist, run


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build`` of the working tree, outside it: the sdist, then the wheel built
    from the sdist."""
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    run([sys.executable, "-m", "build", "--quiet", "--outdir", out, ROOT])
    seconds = time.monotonic() - started
    (wheel,) = out.glob("scheduler_admin-*-py3-none-any.whl")
    (sdist,) = out.glob("scheduler_admin-*.tar.gz")
    return Dist(wheel=wheel, sdist=sdist, seconds=seconds)
