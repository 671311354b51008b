"""Structure and existing tables: statuses other than the configured pending, done and cancelled
words are left alone (scheduler.settings, scheduler.configure_statuses; on SQLite the table
scheduler_statuses), updated_at set when a meeting is completed; the seconds sweep (pg_cron
1.5+, job meeting-status-sweep); one parser of our job commands (scheduler.command_job), history
strictly newest first with run messages that say what the run left behind, teardown parsing job
names through scheduler.job_meetings; on SQLite the views scheduler_upcoming_jobs and
scheduler_orphan_jobs (the set logic of recovery); the application's waker (scheduler.wake,
scheduler.next_end_time, granted to service_role; the triggers NOTIFY scheduler_meetings).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0003/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        # as the owner of public.meetings, like 0002 (05_owner.sql switches, 90 switches back)
        ("0002", "05_owner.sql"),
        ("0003", "10_schema.sql"),
        ("0003", "20_functions.sql"),
        ("0003", "30_triggers.sql"),
        ("0003", "40_admin.sql"),
        ("0003", "50_grants.sql"),
        ("0003", "60_jobs.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [("0003", "10_schema.sql"), ("0003", "20_views.sql"), ("0003", "30_triggers.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0002", "10_schema.sql"),
        ("0002", "20_functions.sql"),
        ("0002", "30_triggers.sql"),
        ("0002", "40_admin.sql"),
        ("0003", "downgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [
        # 0001's triggers first (they do not read scheduler_statuses, which downgrade.sql drops);
        # 10_schema.sql of 0003 only added that table
        ("0001", "30_triggers.sql"),
        ("0003", "downgrade.sql"),
        ("0001", "20_views.sql"),
    ],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
