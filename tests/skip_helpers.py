"""Skips that CI turns into failures.

On a laptop a test that cannot run here (no PostgreSQL, no ``psql``, no ``sqlite3`` shell, an
external server where it needs a throwaway one) is skipped. CI sets
``SCHEDULER_REQUIRE_POSTGRES=1`` and installs everything the suite needs, so there a skip hides a
test that did not run: :func:`require_or_skip` fails instead, and tests/conftest.py turns any
other skip (a ``skipif`` mark, a ``pytest.skip`` that does not go through this module) into a
failure too. There is no exception: with ``SCHEDULER_REQUIRE_POSTGRES=1`` and
``SCHEDULER_TEST_DSN`` the tests that need a throwaway server fail, so the two are not set
together.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_POSTGRES = os.environ.get("SCHEDULER_REQUIRE_POSTGRES", "") not in ("", "0", "false")


def no_skip_message(reason: str) -> str:
    return f"SCHEDULER_REQUIRE_POSTGRES is set (CI): nothing may be skipped, but {reason}"


def require_or_skip(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it under ``SCHEDULER_REQUIRE_POSTGRES``."""
    __tracebackhide__ = True  # reported where it is called, not here
    if REQUIRE_POSTGRES:
        pytest.fail(no_skip_message(reason), pytrace=False)
    pytest.skip(reason)
