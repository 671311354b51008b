-- unchanged since 0002: function scheduler.job_specs(p_meeting_ids pg_catalog.uuid[], p_end_times pg_catalog.timestamptz[])
-- unchanged since 0002: function scheduler.job_meetings(p_job_names pg_catalog.text[])
-- unchanged since 0003: function scheduler.pending_status()
-- unchanged since 0003: function scheduler.done_status()
-- unchanged since 0003: function scheduler.upcoming_jobs()
-- unchanged since 0002: function scheduler.job_name(p_meeting_id pg_catalog.uuid)
-- unchanged since 0002: function scheduler.meeting_id(p_job_name pg_catalog.text)
-- unchanged since 0002: function scheduler.job_minute(p_end_time pg_catalog.timestamptz)
-- unchanged since 0002: function scheduler.cron_schedule(p_end_time pg_catalog.timestamptz)
-- unchanged since 0002: function scheduler.job_command(p_meeting_id pg_catalog.uuid)
-- unchanged since 0002: function scheduler.reconcile_command()
-- unchanged since 0003: function scheduler.command_job(p_command pg_catalog.text)
-- unchanged since 0003: function scheduler.sweep_command()
-- unchanged since 0003: function scheduler.sweep_supported()

-- What the sweep job runs, every second: cheap when nothing is due (one probe of the meetings
-- due, which the partial index on end_time where status is pending serves; no write, no
-- transaction id), else what a meeting's job does. lock_timeout 1s: a held lock fails this run,
-- the next second's run (or the meeting's own job) completes the meeting.
create or replace function scheduler.sweep_due(p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pending pg_catalog.text := scheduler.pending_status();
begin
    if not scheduler.is_enabled() then
        return 0;
    end if;
    if not exists (select 1 from public.meetings m
                   where m.status operator(pg_catalog.=) v_pending
                     and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
        return 0;
    end if;
    return scheduler.complete_due(true, p_path);
end
$$;
comment on function scheduler.sweep_due(pg_catalog.text) is
    'The body of sweep() and wake(): marks done the pending meetings whose end_time has passed '
    '(events with the given path); a probe and no write when none is due.';

create or replace function scheduler.sweep()
returns integer
language sql
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
select scheduler.sweep_due('sweep')
$$;
comment on function scheduler.sweep() is
    'Run by the job meeting-status-sweep (pg_cron 1.5+): marks done the pending meetings whose '
    'end_time has passed; a probe and no write when none is due.';
-- unchanged since 0003: function scheduler.next_end_time()

-- What the waker calls when it wakes: the sweep (complete what is due, skipping locked rows),
-- then the next end_time and the database's clock in one round trip. The waker sleeps for
-- next_end_time - now, both read here, so the application's clock never decides when a meeting
-- is due. Paused: completes nothing and reports no next end_time (the waker then sleeps its
-- longest wait).
create or replace function scheduler.wake()
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
declare
    v_enabled boolean := scheduler.is_enabled();
    v_completed integer := 0;
begin
    if v_enabled then
        v_completed := scheduler.sweep_due('waker');
    end if;
    return pg_catalog.jsonb_build_object(
        'completed', v_completed,
        'next_end_time', case when v_enabled then scheduler.next_end_time() end,
        'now', pg_catalog.now(),
        'paused', not v_enabled);
end
$$;
comment on function scheduler.wake() is
    'Called by the application''s waker: marks done the pending meetings whose end_time has '
    'passed (skipping locked rows), then returns {completed, next_end_time, now, paused}.';
-- unchanged since 0003: function scheduler.sync_sweep()
-- unchanged since 0002: function scheduler.is_enabled()
-- unchanged since 0002: function scheduler.register_jobs(p_meeting_ids pg_catalog.uuid[], p_end_times pg_catalog.timestamptz[])
-- unchanged since 0003: function scheduler.unregister_jobs(p_meeting_ids pg_catalog.uuid[])


-- Marks done every pending meeting whose end time has passed, and sets its updated_at when the
-- table has that column (applications sync on it), and records one completion event per meeting
-- in the same statement (scheduler.completion_events; p_path says which path completed it).
-- p_skip_locked: skip rows that another
-- transaction holds (it completes or moves them itself; the reconcile job catches any left),
-- else wait for them (up to the caller's lock_timeout). Completing a meeting unschedules its job
-- through the update trigger. Where the owner lacks DELETE on cron.job (Supabase:
-- unregister_jobs calls cron.unschedule per job, at most 1000 per transaction) the skip-locked
-- form marks at most 1000 meetings per call, so that the update trigger can unschedule the job
-- of every meeting it completed: the concurrent runs of a busy minute share the burst, and the
-- next runs, or the reconcile job, complete the rest. Dynamic SQL only for the optional column
-- and the limit (both constants of ours); the statuses and the path are parameters.
-- completed_at is the clock when the statement ran (read once: a materialized CTE).
create or replace function scheduler.complete_due(p_skip_locked boolean, p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_completed integer;
begin
    -- the AFTER UPDATE trigger records the BEFORE trigger's completions (path write) when this
    -- flag is on; this statement records its own
    perform pg_catalog.set_config('scheduler.completed_on_write', '', true);
    execute pg_catalog.format(
        'with due as ('
        '    select m.id from public.meetings m'
        '    where m.status operator(pg_catalog.=) $1'
        '      and m.end_time operator(pg_catalog.<=) pg_catalog.now()'
        '    %s for update %s'
        '), done as ('
        '    update public.meetings m set status = $2%s'
        '    from due where m.id operator(pg_catalog.=) due.id'
        '    returning m.id, m.end_time'
        '), t as materialized ('
        '    select pg_catalog.clock_timestamp() as at,'
        '           (select s.webhooks from scheduler.settings s) as webhooks'
        ') '
        'insert into scheduler.completion_events'
        '    (meeting_id, end_time, completed_at, path, delivery, next_attempt_at) '
        'select d.id, d.end_time, t.at, $3, case when t.webhooks then ''pending'' end, t.at '
        'from t cross join done d',
        case when p_skip_locked and not pg_catalog.has_table_privilege('cron.job', 'DELETE')
             then 'limit 1000' else '' end,
        case when p_skip_locked then 'skip locked' else '' end,
        case when exists (
                 select 1 from pg_catalog.pg_attribute a
                 where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
                   and a.attname operator(pg_catalog.=) 'updated_at'
                   and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped)
             then ', updated_at = pg_catalog.now()' else '' end)
    using scheduler.pending_status(), scheduler.done_status(), p_path;
    get diagnostics v_completed = row_count;
    return v_completed;
end
$$;
comment on function scheduler.complete_due(boolean, pg_catalog.text) is
    'Marks done the pending meetings whose end_time has passed (and sets updated_at where the '
    'table has it), recording a completion event per meeting with the given path; skipping or '
    'waiting for locked rows; skipping, at most 1000 per call where the owner lacks DELETE on '
    'cron.job (unregister_jobs'' bound).';
-- 0003's form, without the path
drop function if exists scheduler.complete_due(boolean);

create or replace function scheduler.complete_due_meetings()
returns integer
language sql
set search_path = pg_catalog, pg_temp
as $$
select scheduler.complete_due(true, 'job')
$$;
comment on function scheduler.complete_due_meetings() is
    'Marks done the pending meetings whose end_time has passed, skipping locked rows (at most '
    '1000 per call where the owner lacks DELETE on cron.job); their events say path job.';
-- unchanged since 0003: function scheduler.complete_meeting(p_meeting_id pg_catalog.uuid)
