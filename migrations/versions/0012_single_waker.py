"""One active waker among the application's instances, elected on a lease.

Several application instances each run a waker. Until now every one of them called
``scheduler.wake()``, each after a random delay of 0-100 ms so that they did not wake together.
Now the one that holds the lease in ``scheduler.waker_lease`` (unlogged, row-level security, no
grants: only the owner's roles may write it, unlike a public advisory key) calls ``wake()`` with
no random delay; the others stand by and take over once its lease (1.2 s, renewed every 0.4 s)
has expired. ``scheduler.claim_waker()`` takes or renews the lease in one short statement, and
``scheduler.release_waker()`` gives it up on a clean stop (``sql/postgres/21_waker.sql``).

SQLite: several processes may share one file (an application served by several workers), so
it gets the same lease, the table ``scheduler_waker_lease`` (``sql/revisions/0012/sqlite/``),
and the twins in ``scheduler_admin/sqlite/waker.py``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Its SQL is frozen in ``sql/revisions/0012/``: the delta written by ``scripts/next_delta.py``
(the new table and functions), the grants, and its inverse.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0012", "upgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [("0012", "upgrade.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0012", "downgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [("0012", "downgrade.sql")],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
