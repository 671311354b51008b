"""Which SQL function of ``sql/postgres/`` has no Python function of its name in the module
that mirrors its file (``NN_<concern>.sql`` -> ``scheduler_admin/sqlite/<concern>.py``), and
why. ``tests/unit/test_sqlite_twins.py`` keeps these lists and both sides equal: every other
``scheduler.<name>`` has its twin there, so grep finds both versions of every rule."""

from __future__ import annotations

_SWEEP = "the seconds sweep of pg_cron 1.5+: SQLite's worker runs by the minute"
_ROLES = "roles, owners, grants and partitions: SQLite has none"
_TRIGGER = "a trigger function: SQLite's triggers (sql/sqlite/30_triggers.sql) hold their bodies"
_GENERATED = "a trigger function: the triggers transitions.trigger_sql() generates hold its body"

# SQLite has no counterpart, or one that is not a Python function (a view, a trigger, SQL text).
NO_COUNTERPART: dict[str, str] = {
    "sweep_command": _SWEEP,
    "sweep_supported": _SWEEP,
    "sweep_due": _SWEEP,
    "sweep": _SWEEP,
    "sync_sweep": _SWEEP,
    "sweep_transitions": _SWEEP,
    "job_target": "a direct insert into cron.job or cron.schedule(), by pg_cron's rights; "
    "cron_job is a table of ours",
    "schedule_jobs": "registers jobs by name through job_target(); SQLite's transitions insert "
    "into cron_job in the SQL of transitions._register_sql()",
    "table_tree": _ROLES,
    "foreign_triggers": _ROLES,
    "unsafe_relations": _ROLES,
    "foreign_grants": _ROLES,
    "secure_table": _ROLES,
    "require_safe_row": _ROLES,
    "table_safety": _ROLES,
    "security_report": _ROLES,
    "take_lock": "a lock only the owner may take; SQLite serialises writers (BEGIN IMMEDIATE)",
    "meetings_before_write": _TRIGGER,
    "meetings_after_insert": _TRIGGER,
    "meetings_after_update": _TRIGGER,
    "meetings_after_delete": _TRIGGER,
    "record_write_completions": _TRIGGER + " (the AFTER triggers record the write path)",
    "create_before_write_trigger": _TRIGGER,
    "transition_before_write": _GENERATED,
    "transition_after_write": _GENERATED,
    "job_specs": "the view scheduler_meeting_jobs (sql/sqlite/20_views.sql)",
    "upcoming_jobs": "the view scheduler_upcoming_jobs (sql/sqlite/20_views.sql)",
    "job_minute": "an expression of the view scheduler_meeting_jobs (transitions.job_minute_sql())",
    "cron_schedule": "an expression of the view scheduler_meeting_jobs "
    "(transitions.schedule_sql())",
    "transition_job_specs": "SQL text: transitions.jobs_sql()",
    "register_transition_jobs": "SQL text run by the generated triggers and repair_transition() "
    "(transitions._register_sql())",
    "unregister_transition_jobs": "SQL text run by the generated triggers "
    "(transitions.trigger_sql())",
    "job_meetings": "the set form of meeting_id(): Python reads one name at a time "
    "(core.meeting_id(), functions.py)",
    "done_status": "read with the other two words by functions.statuses()",
    "remove_stray_transition_jobs": "PostgreSQL's remove_transition() unschedules a bounded "
    "number of jobs per call and reconcile the rest; SQLite's deletes every one at once",
    "complete_set": "the one statement of complete_rows(): safety.complete_rows() runs the "
    "caller's complete() (functions.complete_due(), transitions.complete_due_transition())",
}

# The twin stands in another module than the one mirroring its SQL file: module, reason.
ELSEWHERE: dict[str, tuple[str, str]] = {
    "wake": (
        "transitions",
        "serves every transition: it calls transitions.py, which builds on functions.py",
    ),
}
