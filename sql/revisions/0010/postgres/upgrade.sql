-- Revision 0010 (written by scripts/next_delta.py): cancel_meeting() refuses a meeting that is
-- not upcoming, naming its status, instead of answering as if it had cancelled it.

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
