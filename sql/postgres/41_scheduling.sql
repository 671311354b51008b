-- Admin functions, scheduling: schedule or cancel one meeting; pause and resume the scheduler
-- or one transition. Python twin: scheduler_admin/sqlite/scheduling.py.
-- Callable with psycopg and through Supabase RPC; the security definer ones because the role
-- that calls them (service_role on Supabase) has no rights on the cron schema. Every one pins
-- search_path = pg_catalog, pg_temp and qualifies every name; all are owned by the owner of
-- public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

create or replace function scheduler.schedule_meeting(p_meeting_id pg_catalog.uuid,
                                                      p_end_time pg_catalog.timestamptz)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status pg_catalog.text;
    v_pending pg_catalog.text := scheduler.pending_status();
    v_relid pg_catalog.oid;
begin
    if p_end_time is null then
        raise exception 'end_time is required' using errcode = 'invalid_parameter_value';
    end if;
    select m.status, m.tableoid into v_status, v_relid from public.meetings m
    where m.id operator(pg_catalog.=) p_meeting_id for update;
    if not found then
        raise exception 'no meeting with id %', p_meeting_id using errcode = 'no_data_found';
    end if;
    -- the update below runs the triggers of the meeting's partition as the owner (0009)
    perform scheduler.require_safe_row('public.meetings', v_relid,
                                       pg_catalog.format('meeting %s', p_meeting_id));
    if v_status is distinct from v_pending then
        raise exception 'meeting % is %, not %: nothing to schedule', p_meeting_id, v_status,
                        v_pending
            using errcode = 'invalid_parameter_value',
                  hint = pg_catalog.format('Set its status back to %s first.', v_pending);
    end if;
    update public.meetings m set end_time = p_end_time
    where m.id operator(pg_catalog.=) p_meeting_id
    returning m.status into v_status;
    if v_status operator(pg_catalog.=) v_pending and scheduler.is_enabled() then
        -- the trigger registered it if end_time moved; make sure it exists if it did not.
        perform scheduler.register_jobs(array[p_meeting_id], array[p_end_time]);
    end if;
    return pg_catalog.jsonb_build_object(
        'meeting_id', p_meeting_id, 'status', v_status,
        'job', (select pg_catalog.to_jsonb(l) from scheduler.list_jobs() l
                where l.meeting_id operator(pg_catalog.=) p_meeting_id));
end
$$;
comment on function scheduler.schedule_meeting(pg_catalog.uuid, pg_catalog.timestamptz) is
    'Sets the end time of an upcoming meeting and makes sure its job exists (the original '
    'service''s schedule_meeting_status_update). An end time already past completes it.';

create or replace function scheduler.cancel_meeting(p_meeting_id pg_catalog.uuid)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status pg_catalog.text;
    v_pending pg_catalog.text := scheduler.pending_status();
    v_removed integer;
    v_relid pg_catalog.oid;
begin
    select m.status, m.tableoid into v_status, v_relid from public.meetings m
    where m.id operator(pg_catalog.=) p_meeting_id for update;
    if not found then
        raise exception 'no meeting with id %', p_meeting_id using errcode = 'no_data_found';
    end if;
    if v_status is distinct from v_pending then
        raise exception 'meeting % is %, not %: nothing to cancel', p_meeting_id,
                        coalesce(v_status, 'without a status'), v_pending
            using errcode = 'invalid_parameter_value',
                  hint = pg_catalog.format('Only a meeting in status %s can be cancelled. A job '
                                           'left over for another one goes with the next '
                                           'reconcile (scheduler-admin reconcile).', v_pending);
    end if;
    -- the update below runs the triggers of the meeting's partition as the owner
    perform scheduler.require_safe_row('public.meetings', v_relid,
                                       pg_catalog.format('meeting %s', p_meeting_id));
    select pg_catalog.count(*) into v_removed from cron.job j
    where j.jobname operator(pg_catalog.=) scheduler.job_name(p_meeting_id)::pg_catalog.name
      and j.username operator(pg_catalog.=) current_user;
    update public.meetings m
    set status = (select s.cancelled_status from scheduler.settings s)
    where m.id operator(pg_catalog.=) p_meeting_id returning m.status into v_status;
    return pg_catalog.jsonb_build_object(
        'meeting_id', p_meeting_id, 'status', v_status, 'jobs_removed', v_removed);
end
$$;
comment on function scheduler.cancel_meeting(pg_catalog.uuid) is
    'Cancels an upcoming meeting (the cancelled status of scheduler.settings, default '
    'cancelled) and so removes its job (the original service''s cancel_meeting_status_update); '
    'a meeting in another status is an error that names it.';

-- The whole scheduler (p_transition null) or one transition by name.
create or replace function scheduler.pause(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_transition is null then
        update scheduler.settings set enabled = false, updated_at = pg_catalog.now();
        return pg_catalog.jsonb_build_object('enabled', false);
    end if;
    perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    update scheduler.transitions t set paused = true
    where t.name operator(pg_catalog.=) p_transition;
    return pg_catalog.jsonb_build_object('transition', p_transition, 'paused', true);
end
$$;
comment on function scheduler.pause(pg_catalog.text) is
    'Pauses the scheduler, or one transition by name: triggers register no job, jobs and '
    'reconcile change nothing.';

create or replace function scheduler.resume(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_transition is null then
        update scheduler.settings set enabled = true, updated_at = pg_catalog.now();
        update scheduler.transitions t set paused = false where t.paused;
        return scheduler.recover(false);
    end if;
    perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    if not coalesce((select s.enabled from scheduler.settings s), true) then
        raise exception 'the scheduler is paused as a whole: resuming transition % alone would do nothing',
                        p_transition
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'Run scheduler-admin resume (select scheduler.resume()): it resumes every transition.';
    end if;
    update scheduler.transitions t set paused = false
    where t.name operator(pg_catalog.=) p_transition;
    return scheduler.recover(false, p_transition);
end
$$;
comment on function scheduler.resume(pg_catalog.text) is
    'Resumes the scheduler (and every transition paused by name), or one transition, and runs '
    'its recovery.';
