-- Revision 0011, downgrade: the functions as 0009 and earlier hold them, the new ones and the
-- job_horizon columns dropped (every pending row then gets its job at the next reconcile).
alter table scheduler.settings drop column if exists job_horizon;
alter table scheduler.transitions drop column if exists job_horizon;
comment on table scheduler.settings is
    'One row. enabled = false pauses the scheduler (triggers register no job, jobs and the '
    'reconcile job change nothing); history_retention bounds our rows in cron.job_run_details; '
    'pending_status, done_status and cancelled_status are the words of meetings.status we act on; '
    'sweep_seconds is the interval of the seconds sweep (pg_cron 1.5+; 0 turns it off).';
-- unchanged since 0003: function scheduler.upcoming_jobs()
-- unchanged since 0005: function scheduler.register_jobs(p_meeting_ids pg_catalog.uuid[], p_end_times pg_catalog.timestamptz[])
-- unchanged since 0009: function scheduler.unschedule_jobs(p_job_names pg_catalog.text[])
-- unchanged since 0009: function scheduler.repair(p_dry_run boolean, p_skip_locked boolean)
-- unchanged since 0005: function scheduler.register_transition_jobs(p_name pg_catalog.text, p_keys pg_catalog.text[], p_times pg_catalog.timestamptz[])
-- unchanged since 0009: function scheduler.repair_transition(p_name pg_catalog.text, p_dry_run boolean, p_skip_locked boolean)
-- unchanged since 0009: function scheduler.transition_health(p_name pg_catalog.text)
drop function if exists scheduler.job_horizon(text);
drop function if exists scheduler.job_cutoff(text);
drop function if exists scheduler.set_job_horizon(interval,text);
drop function if exists scheduler.horizons();
drop function if exists scheduler.deferred_jobs(text);
-- unchanged since 0009: function scheduler.health()
-- unchanged since 0009: function scheduler.metrics(p_transition pg_catalog.text default null)
