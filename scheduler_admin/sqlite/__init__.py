"""The SQLite twin of the PostgreSQL SQL, module by module and function by function.

=====================  =======================================================================
``connection``         URL -> path, connections (WAL, busy timeout), transactions, the clock,
                       time helpers
``events``             the completion events and their webhook delivery (recording them,
                       set_webhooks, claim_events, record_attempt; the retention of reconcile)
``failing``            rows that cannot be completed (``scheduler.complete_rows()``, 0009)
``functions``          twin of ``sql/postgres/20_functions.sql`` (job names, registration,
                       completion, the status words) for meetings
``transitions``        twin of ``sql/postgres/45_transitions.sql`` (the registry, the generated
                       triggers, completion and repair of every other transition), and
                       ``wake()``, which serves meetings and every other transition
``admin``              twin of ``sql/postgres/40_admin.sql`` (list_jobs, repair, recover,
                       reconcile, schedule_meeting, cancel_meeting, configure_statuses, pause,
                       resume, history, events, health)
``metrics``            twin of ``scheduler.metrics()``
``commands``           what pg_cron hands to PostgreSQL: the interpreter of job commands
                       (``complete_meeting('<id>')``, ``complete_transition(…)``,
                       ``reconcile()``)
``worker``             pg_cron itself: :class:`~scheduler_admin.sqlite.worker.CronWorker` runs
                       the due jobs' ``commands`` once a minute and records their runs
=====================  =======================================================================

Each module imports only those above it in this table (``make lint`` checks that no import
cycle comes back), and nothing here imports :mod:`scheduler_admin.backends`: the result shapes
are :mod:`scheduler_admin.core`'s.

The schema itself is ``sql/sqlite/*.sql``: the table ``scheduler_statuses`` is the twin of the
status columns of ``scheduler.settings``, the view ``scheduler_meeting_jobs`` is the twin of
``scheduler.job_specs()``, ``scheduler_upcoming_jobs`` of ``scheduler.upcoming_jobs()``,
``scheduler_completion_events`` of ``scheduler.completion_events`` (the view
``scheduler_events`` adds its lateness), and the triggers of ``30_triggers.sql`` of those of
``sql/postgres/30_triggers.sql``.
:class:`scheduler_admin.backends.sqlite.SqliteBackend` is the Backend protocol on top of these
modules (its doctor is :mod:`scheduler_admin.backends.sqlite_doctor`).
"""
