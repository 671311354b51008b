"""Completion events, webhook delivery and metrics: one row in scheduler.completion_events per
meeting completed by a path of ours (job, sweep, waker, reconcile, recover, write), written by the
completing statement; webhook delivery state (scheduler.set_webhooks, claim_events,
record_attempt, table webhook_attempts); scheduler.events; scheduler.metrics with
scheduler.metric_totals (counts of the events the retention deleted); failed runs and how many
were retried (scheduler.failed_runs, health's retried_runs_24h). On SQLite the tables
scheduler_completion_events, scheduler_webhook_attempts, scheduler_webhooks and the totals of
the deleted events, the view scheduler_events (lateness), and the after triggers recording the
completions of path write.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0004/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0004", "10_schema.sql"),
        ("0004", "20_functions.sql"),
        ("0004", "30_triggers.sql"),
        ("0004", "40_admin.sql"),
        ("0004", "50_grants.sql"),
        ("0003", "60_jobs.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    # the tables first, then the view that reads them, then the triggers that write them
    "sqlite": [("0004", "10_schema.sql"), ("0004", "20_views.sql"), ("0004", "30_triggers.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0003", "10_schema.sql"),
        ("0003", "20_functions.sql"),
        ("0003", "30_triggers.sql"),
        ("0003", "40_admin.sql"),
        ("0004", "downgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [
        # 0003's triggers first (they record no event), then the tables and the view go
        ("0003", "30_triggers.sql"),
        ("0004", "downgrade.sql"),
    ],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
