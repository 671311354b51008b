"""Kept for ``migrations/env.py``, which imports ``configure_statuses`` from here: the twin of
``sql/postgres/42_statuses.sql`` is :mod:`scheduler_admin.sqlite.statuses`."""

from scheduler_admin.sqlite.statuses import configure_statuses

__all__ = ["configure_statuses"]
