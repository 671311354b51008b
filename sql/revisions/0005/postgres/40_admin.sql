-- unchanged since 0002: function scheduler.next_run(p_schedule pg_catalog.text, p_after pg_catalog.timestamptz)
-- unchanged since 0003: function scheduler.list_jobs()
-- unchanged since 0004: function scheduler.repair(p_dry_run boolean, p_skip_locked boolean)

create or replace function scheduler.recover(p_dry_run boolean default false)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- a held lock on meetings or cron.job fails the call instead of hanging
set lock_timeout = '5s'
as $$
begin
    if not p_dry_run and not scheduler.is_enabled() then
        raise exception 'the scheduler is paused: recovery would register jobs'
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'Run scheduler-admin resume (select scheduler.resume()), which also recovers.';
    end if;
    -- One recovery or reconciliation at a time.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('scheduler.repair'));
    -- the other registered transitions (45_transitions.sql), only when there are some
    return scheduler.repair(p_dry_run, false) operator(pg_catalog.||) pg_catalog.jsonb_strip_nulls(
        pg_catalog.jsonb_build_object('transitions', scheduler.repair_transitions(p_dry_run, false)));
end
$$;
comment on function scheduler.recover(boolean) is
    'Start-up recovery: re-runs the registration for every upcoming meeting (idempotent). '
    'With p_dry_run it changes nothing and reports what it would do.';

create or replace function scheduler.reconcile()
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- a held lock fails this run (the next one, a minute later, retries) instead of holding one of
-- pg_cron's connections
set lock_timeout = '5s'
as $$
declare
    v_report pg_catalog.jsonb;
    v_history integer;
    v_sweep pg_catalog.text;
begin
    if not scheduler.is_enabled() then
        return pg_catalog.jsonb_build_object('paused', true);
    end if;
    if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('scheduler.repair')) then
        return pg_catalog.jsonb_build_object('skipped', 'another recovery is running');
    end if;
    v_report := scheduler.repair(false, true);
    -- the other registered transitions (45_transitions.sql), only when there are some
    v_report := v_report operator(pg_catalog.||) pg_catalog.jsonb_strip_nulls(
        pg_catalog.jsonb_build_object('transitions', scheduler.repair_transitions(false, true)));
    v_sweep := scheduler.sync_sweep();
    delete from cron.job_run_details d
    where d.username operator(pg_catalog.=) current_user
      and (d.end_time operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-)
               (select s.history_retention from scheduler.settings s))
           -- the sweep runs every second: its successful runs are kept ten minutes only
           or d.command operator(pg_catalog.=) scheduler.sweep_command()
              and d.status operator(pg_catalog.=) 'succeeded'
              and d.end_time operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-)
                                                     interval '10 minutes'))
      -- commands of ours, with or without the statement timeout that precedes them since 0002
      and (d.command operator(pg_catalog.~~) '%select scheduler.complete_meeting(%'
           or d.command operator(pg_catalog.~~) '%select scheduler.reconcile()'
           or d.command operator(pg_catalog.=) scheduler.sweep_command());
    get diagnostics v_history = row_count;
    return v_report operator(pg_catalog.||) pg_catalog.jsonb_build_object(
        'history_deleted', v_history, 'sweep', v_sweep,
        -- completion events past the retention, counted into metric_totals (0004)
        'events_deleted', scheduler.purge_events());
end
$$;
comment on function scheduler.reconcile() is
    'Run every minute by the job meeting-status-reconcile: repairs like recover (skipping rows '
    'other transactions hold), makes the sweep job match its setting, and deletes our '
    'cron.job_run_details rows and completion events older than the retention (successful sweep '
    'runs after 10 minutes).';
-- unchanged since 0003: function scheduler.schedule_meeting(p_meeting_id pg_catalog.uuid, p_end_time pg_catalog.timestamptz)
-- unchanged since 0003: function scheduler.cancel_meeting(p_meeting_id pg_catalog.uuid)
-- unchanged since 0003: function scheduler.configure_statuses(p_pending pg_catalog.text default null, p_done pg_catalog.text default null, p_cancelled pg_catalog.text default null)
-- unchanged since 0002: function scheduler.pause()
-- unchanged since 0002: function scheduler.resume()
-- unchanged since 0003: function scheduler.history(p_failed_only boolean default false, p_limit integer default 50)
-- unchanged since 0003: function scheduler.security_report()
-- unchanged since 0004: function scheduler.event_rows(p_event_ids bigint[])
-- unchanged since 0004: function scheduler.events(p_limit integer default 50, p_path pg_catalog.text default null)
-- unchanged since 0004: function scheduler.set_webhooks(p_enabled boolean)
-- unchanged since 0004: function scheduler.claim_events(p_limit integer, p_lease_seconds double precision)
-- unchanged since 0004: function scheduler.record_attempt(p_event_id bigint, p_outcome pg_catalog.text, p_status_code integer default null, p_error pg_catalog.text default null, p_retry_in_seconds double precision default null)
-- unchanged since 0004: function scheduler.lateness_buckets()
-- unchanged since 0004: function scheduler.event_counts(p_event_ids bigint[])
-- unchanged since 0004: function scheduler.purge_events()
-- unchanged since 0004: function scheduler.failed_runs(p_since pg_catalog.timestamptz)
-- unchanged since 0004: function scheduler.health()
-- unchanged since 0004: function scheduler.metrics()
