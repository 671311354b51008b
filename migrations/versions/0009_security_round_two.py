"""Security and fault isolation, round two.

- The owner's code never writes a table, partition or inheritance child that another role owns
  or carries a trigger another role wrote (``scheduler.unsafe_relations``); TRIGGER, TRUNCATE
  and REFERENCES are taken back from every other role on meetings, every registered table and
  every partition of them, by the migration, ``add_transition`` and every reconcile run
  (``scheduler.secure_table``); doctor reports what is left (``scheduler.table_safety``).
- Serialisation on rows of ``scheduler.locks`` (FOR UPDATE) instead of public advisory keys;
  the reconcile job's skips in a row are counted (``scheduler.reconcile_state``), its failures
  in a row read from pg_cron's history.
- One row that cannot be completed never holds up another: ``scheduler.complete_rows`` splits a
  failing set until each failing row is alone, records it in ``scheduler.failing_rows`` and
  leaves it out until its retry time; every transition completes in isolation.
- Completion events of writes come only from rows the BEFORE triggers completed (noted in
  ``scheduler.write_completions``, which only the owner may write), never from a setting any
  session may set.
- A key too long for a job name is refused by the BEFORE trigger (paused or not), and reported
  row by row by recovery and repair.

SQLite: the table ``scheduler_failing_rows`` (``sql/revisions/0009/sqlite/upgrade.sql``; its
downgrade drops it); the rest concerns PostgreSQL alone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Its SQL is frozen in ``sql/revisions/0009/``: PostgreSQL's delta holds the new tables and
functions and the functions that changed; its downgrade applies again the files of the
revisions that last defined those functions, then removes what 0009 added.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0009", "10_schema.sql"),
        ("0009", "25_safety.sql"),
        ("0009", "functions.sql"),
        ("0009", "after.sql"),
        ("0007", "50_grants.sql"),
        ("0009", "grants.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    # the table of rows failing to complete (the rest is PostgreSQL's alone)
    "sqlite": [("0009", "upgrade.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0007", "20_functions.sql"),
        ("0004", "30_triggers.sql"),
        ("0008", "40_admin.sql"),
        ("0008", "45_transitions.sql"),
        ("0009", "downgrade.sql"),
        ("0007", "50_grants.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [("0009", "downgrade.sql")],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in UPGRADE_FILES:
        apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in DOWNGRADE_FILES:
        apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
