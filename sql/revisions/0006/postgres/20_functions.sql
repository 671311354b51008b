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
    v_other integer := 0;
begin
    if not coalesce((select s.enabled from scheduler.settings s), true) then
        return 0;
    end if;
    -- the other registered transitions not paused (45_transitions.sql): rare, so one probe of
    -- the registry
    if exists (select 1 from scheduler.transitions t where not t.builtin) then
        v_other := scheduler.sweep_transitions();
    end if;
    -- meetings paused by name (0006)
    if not scheduler.is_enabled() then
        return v_other;
    end if;
    if not exists (select 1 from public.meetings m
                   where m.status operator(pg_catalog.=) v_pending
                     and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
        return v_other;
    end if;
    return scheduler.complete_due(true, p_path) operator(pg_catalog.+) v_other;
end
$$;
comment on function scheduler.sweep_due(pg_catalog.text) is
    'The body of sweep() and wake(): marks done the pending meetings whose end_time has passed '
    '(events with the given path); a probe and no write when none is due.';
-- unchanged since 0004: function scheduler.sweep()
-- unchanged since 0003: function scheduler.next_end_time()

-- What the waker calls when it wakes: the sweep (complete what is due, skipping locked rows),
-- then the next end_time and the database's clock in one round trip. The waker sleeps for
-- next_end_time - now, both read here, so the application's clock never decides when a meeting
-- is due. Paused: completes nothing and reports no next end_time (the waker then sleeps its
-- longest wait). p_transition (0006): every transition that acts (null), or the one named; the
-- next time is the earliest among them. The function is dropped first: 0005's wake() had no
-- argument, and both would match a call without one.
drop function if exists scheduler.wake();
create or replace function scheduler.wake(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
declare
    v_builtin boolean := p_transition is null or p_transition operator(pg_catalog.=) 'meetings';
    v_enabled boolean;
    v_completed integer := 0;
    v_next pg_catalog.timestamptz;
    v_names pg_catalog.text[];
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    -- the other transitions that act: all of them, or the one named (none for meetings)
    v_names := array(select o.name from scheduler.other_transitions() o(name)
                     where p_transition is null or o.name operator(pg_catalog.=) p_transition);
    v_enabled := coalesce((select s.enabled from scheduler.settings s), true)
                 and (v_builtin and scheduler.is_enabled()
                      or pg_catalog.cardinality(v_names) operator(pg_catalog.>) 0);
    if v_enabled then
        if p_transition is null then
            v_completed := scheduler.sweep_due('waker');
        elsif v_builtin then
            if exists (select 1 from public.meetings m
                       where m.status operator(pg_catalog.=) scheduler.pending_status()
                         and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
                v_completed := scheduler.complete_due(true, 'waker');
            end if;
        else
            v_completed := scheduler.complete_due_transition(p_transition, true);
        end if;
        v_next := (select pg_catalog.min(t.next)
                   from (select scheduler.next_end_time() as next
                         where v_builtin and scheduler.is_enabled()
                         union all
                         select scheduler.transition_next_time(n.name)
                         from pg_catalog.unnest(v_names) as n(name)) t);
    end if;
    return pg_catalog.jsonb_build_object(
        'completed', v_completed,
        'next_end_time', v_next,
        'now', pg_catalog.now(),
        'paused', not v_enabled);
end
$$;
comment on function scheduler.wake(pg_catalog.text) is
    'Called by the application''s waker: marks done (gives the to-state) the pending rows whose '
    'time has passed, of every transition or the one named (skipping locked rows), then returns '
    '{completed, next_end_time, now, paused}.';
-- unchanged since 0003: function scheduler.sync_sweep()

-- Whether the meetings' triggers, jobs and repair act: the scheduler is enabled (pause/resume)
-- and the builtin transition meetings is not paused by name (0006: pause --transition meetings;
-- scheduler.transition_active in 45_transitions.sql is the same for any transition). plpgsql:
-- written before the registry exists on a new database.
create or replace function scheduler.is_enabled()
returns boolean
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return coalesce((select s.enabled from scheduler.settings s), true)
           and not coalesce((select t.paused from scheduler.transitions t where t.builtin), false);
end
$$;
-- unchanged since 0005: function scheduler.job_target(out direct boolean, out host pg_catalog.text, out port integer, out database pg_catalog.text, out username pg_catalog.text)
-- unchanged since 0005: function scheduler.register_jobs(p_meeting_ids pg_catalog.uuid[], p_end_times pg_catalog.timestamptz[])
-- unchanged since 0005: function scheduler.schedule_jobs(p_job_names pg_catalog.text[], p_schedules pg_catalog.text[], p_commands pg_catalog.text[])
-- unchanged since 0005: function scheduler.unschedule_jobs(p_job_names pg_catalog.text[])
-- unchanged since 0005: function scheduler.unregister_jobs(p_meeting_ids pg_catalog.uuid[])
-- unchanged since 0004: function scheduler.complete_due(p_skip_locked boolean, p_path pg_catalog.text)
-- 0003's form, without the path
drop function if exists scheduler.complete_due(boolean);
-- unchanged since 0004: function scheduler.complete_due_meetings()
-- unchanged since 0003: function scheduler.complete_meeting(p_meeting_id pg_catalog.uuid)
