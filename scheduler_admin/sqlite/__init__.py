"""The SQLite twin of the PostgreSQL SQL, module by module and function by function.

=====================  =======================================================================
``connection``         URL -> path, connections (WAL, busy timeout), transactions, time helpers
``functions``          twin of ``sql/postgres/20_functions.sql`` (job names, registration,
                       completion, the status words)
``admin``              twin of ``sql/postgres/40_admin.sql`` (list_jobs, repair, recover,
                       reconcile, schedule_meeting, cancel_meeting, configure_statuses, pause,
                       resume, history, health)
``events``             the completion events and their webhook delivery (scheduler.events,
                       set_webhooks, claim_events, record_attempt; the retention of reconcile)
``metrics``            twin of ``scheduler.metrics()``
``commands``           what pg_cron hands to PostgreSQL: the interpreter of job commands
                       (``complete_meeting('<id>')``, ``reconcile()``)
``doctor``             the checks of ``scheduler-admin doctor`` (Python on both backends)
=====================  =======================================================================

The schema itself is ``sql/sqlite/*.sql``: the table ``scheduler_statuses`` is the twin of the
status columns of ``scheduler.settings``, the view ``scheduler_meeting_jobs`` is the twin of
``scheduler.job_specs()``, ``scheduler_upcoming_jobs`` of ``scheduler.upcoming_jobs()``,
``scheduler_completion_events`` of ``scheduler.completion_events`` (the view
``scheduler_events`` adds its lateness), and the triggers of ``30_triggers.sql`` of those of
``sql/postgres/30_triggers.sql``.
:class:`scheduler_admin.backends.sqlite.SqliteBackend` is the Backend protocol on top of
``admin``; :class:`scheduler_admin.worker.CronWorker` is pg_cron's loop and runs ``commands``.
"""
