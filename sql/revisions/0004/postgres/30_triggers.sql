-- Triggers on public.meetings. A row-level BEFORE trigger validates the row and completes a
-- meeting whose end time has already passed; statement-level AFTER triggers (with transition
-- tables, so that one INSERT ... SELECT or UPDATE of many rows is handled as a set) register and
-- unschedule jobs.

create or replace function scheduler.meetings_before_write()
returns pg_catalog.trigger
language plpgsql
-- security invoker: it reads and sets only NEW and its arguments (the pending and done words,
-- given when the trigger is created: the roles that write meetings cannot read
-- scheduler.settings) and calls pg_catalog functions.
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Only pending meetings are ours; any other status is the application's and left alone.
    if new.status is null or new.status::pg_catalog.text operator(pg_catalog.<>) tg_argv[0] then
        return new;
    end if;
    if new.end_time is null then
        raise exception 'meeting %: end_time is required', coalesce(new.id::pg_catalog.text, '(new)')
            using errcode = 'not_null_violation',
                  hint = 'Give end_time as a timestamp with time zone, e.g. 2026-12-01 15:30:00+00.';
    end if;
    -- A job's schedule is a calendar minute, and the admin tools read times as years 1 to 9999.
    if not pg_catalog.isfinite(new.end_time)
       or new.end_time operator(pg_catalog.<) '0001-01-01 00:00:00+00'::pg_catalog.timestamptz
       or new.end_time operator(pg_catalog.>=) '10000-01-01 00:00:00+00'::pg_catalog.timestamptz then
        raise exception 'meeting %: end_time % is out of range', coalesce(new.id::pg_catalog.text, '(new)'),
                        new.end_time
            using errcode = 'datetime_field_overflow',
                  hint = 'Give a finite end_time between the years 1 and 9999, e.g. 2026-12-01 15:30:00+00.';
    end if;
    if new.end_time operator(pg_catalog.<=) pg_catalog.now() then
        new.status := tg_argv[1];
        -- the AFTER trigger of this statement records the completion events (path write): it
        -- runs as the owner, this trigger as whoever writes
        perform pg_catalog.set_config('scheduler.completed_on_write', 'on', true);
        -- completing a meeting sets updated_at where the table has it, as complete_due() does
        if pg_catalog.to_jsonb(new) operator(pg_catalog.?) 'updated_at' then
            new := pg_catalog.jsonb_populate_record(
                new, pg_catalog.jsonb_build_object('updated_at', pg_catalog.now()));
        end if;
    end if;
    return new;
end
$$;
comment on function scheduler.meetings_before_write() is
    'For a pending (upcoming) meeting: rejects a null or out-of-range end_time with a clear '
    'error, and marks it done when its end_time has already passed (so it never gets a job). '
    'Rows with any other status are left alone.';

-- Completion events of the meetings the BEFORE trigger completed (path write): the AFTER
-- triggers below call this when the BEFORE trigger raised the transaction-local flag
-- scheduler.completed_on_write in this statement, then lower it. The rows are those of the
-- statement that became done (the BEFORE trigger cannot tell the AFTER trigger which rows it
-- changed; a statement that also sets other rows done itself records those too).
create or replace function scheduler.record_write_completions(p_meeting_ids pg_catalog.uuid[],
                                                              p_end_times pg_catalog.timestamptz[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_count integer;
begin
    perform pg_catalog.set_config('scheduler.completed_on_write', '', true);
    insert into scheduler.completion_events
        (meeting_id, end_time, completed_at, path, delivery, next_attempt_at)
    select r.id, r.end_time, t.at, 'write', case when t.webhooks then 'pending' end, t.at
    from (select pg_catalog.clock_timestamp() as at,
                 (select s.webhooks from scheduler.settings s) as webhooks) t
    cross join rows from (pg_catalog.unnest(p_meeting_ids), pg_catalog.unnest(p_end_times))
         as r(id, end_time)
    where r.id is not null;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function scheduler.record_write_completions(pg_catalog.uuid[], pg_catalog.timestamptz[]) is
    'Records completion events (path write) for the meetings a write completed because their '
    'end_time had passed. Internal: called by the AFTER triggers on meetings.';

create or replace function scheduler.meetings_after_insert()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ids pg_catalog.uuid[];
    v_ends pg_catalog.timestamptz[];
    v_next pg_catalog.timestamptz;
begin
    -- meetings inserted with an end time already past, completed by the BEFORE trigger
    if pg_catalog.current_setting('scheduler.completed_on_write', true) operator(pg_catalog.=) 'on' then
        perform scheduler.record_write_completions(pg_catalog.array_agg(n.id),
                                                   pg_catalog.array_agg(n.end_time))
        from new_meetings n
        where n.status operator(pg_catalog.=) (select scheduler.done_status())
          -- as the BEFORE trigger decides (rows inserted done by the same statement may have
          -- no end time: any status but the pending one may)
          and n.end_time operator(pg_catalog.<=) pg_catalog.now();
    end if;
    if scheduler.is_enabled() then
        select pg_catalog.array_agg(n.id), pg_catalog.array_agg(n.end_time),
               pg_catalog.min(n.end_time)
        into v_ids, v_ends, v_next
        from new_meetings n
        -- (select ...): the pending word is read once per statement, not once per row
        where n.status operator(pg_catalog.=) (select scheduler.pending_status());
        perform scheduler.register_jobs(v_ids, v_ends);
        -- Tell the application's waker (scheduler_admin/waker.py), which may sleep until a
        -- later meeting: one notification per statement, delivered at commit.
        if v_next is not null then
            perform pg_catalog.pg_notify('scheduler_meetings', pg_catalog.to_char(
                v_next at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'));
        end if;
    end if;
    return null;
end
$$;
comment on function scheduler.meetings_after_insert() is
    'Registers a job per inserted upcoming meeting and announces the earliest end_time on channel '
    'scheduler_meetings (NOTIFY, for the application''s waker). security definer: the writing '
    'role has no rights on the cron schema; jobs belong to the owner of this function.';

create or replace function scheduler.meetings_after_update()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- Its statements join the two transition tables, and PL/pgSQL keeps their plans for the session:
-- planned when a statement changed no row (recover's completion, an update of no meeting), a
-- nested loop over both tables was reused for the next update of 20,000 meetings in that session
-- and took 54 s (400 million comparisons; benchmarks.revisions "complete"). A hash join costs
-- nothing at one row and stays linear at any size.
set enable_nestloop = off
as $$
declare
    v_pending pg_catalog.text := scheduler.pending_status();
    v_ids pg_catalog.uuid[];
    v_ends pg_catalog.timestamptz[];
    v_next pg_catalog.timestamptz;
begin
    -- meetings whose end time moved into the past, completed by the BEFORE trigger
    if pg_catalog.current_setting('scheduler.completed_on_write', true) operator(pg_catalog.=) 'on' then
        perform scheduler.record_write_completions(pg_catalog.array_agg(n.id),
                                                   pg_catalog.array_agg(n.end_time))
        from new_meetings n
        join old_meetings o on o.id operator(pg_catalog.=) n.id
        where n.status operator(pg_catalog.=) (select scheduler.done_status())
          and o.status is distinct from n.status
          and n.end_time operator(pg_catalog.<=) pg_catalog.now();
    end if;
    -- A meeting that left upcoming (or whose id changed) loses its job.
    perform scheduler.unregister_jobs(pg_catalog.array_agg(o.id))
    from old_meetings o
    left join new_meetings n on n.id operator(pg_catalog.=) o.id
    where o.status operator(pg_catalog.=) v_pending
      and (n.id is null or n.status is distinct from o.status);
    -- A meeting that became upcoming, or whose end time moved, gets its job (re)registered.
    if scheduler.is_enabled() then
        select pg_catalog.array_agg(n.id), pg_catalog.array_agg(n.end_time),
               pg_catalog.min(n.end_time)
        into v_ids, v_ends, v_next
        from new_meetings n
        left join old_meetings o on o.id operator(pg_catalog.=) n.id
        where n.status operator(pg_catalog.=) v_pending
          and (o.id is null or o.status is distinct from n.status
               or o.end_time operator(pg_catalog.<>) n.end_time);
        perform scheduler.register_jobs(v_ids, v_ends);
        -- Tell the application's waker, as meetings_after_insert does.
        if v_next is not null then
            perform pg_catalog.pg_notify('scheduler_meetings', pg_catalog.to_char(
                v_next at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'));
        end if;
    end if;
    return null;
end
$$;
comment on function scheduler.meetings_after_update() is
    'Unschedules the job of a meeting that is no longer upcoming and (re)registers it when the '
    'meeting becomes upcoming or its end_time moves, announcing the earliest such end_time on '
    'channel scheduler_meetings (NOTIFY, for the application''s waker). security definer: see '
    'meetings_after_insert.';
-- unchanged since 0003: function scheduler.meetings_after_delete()
-- unchanged since 0003: function scheduler.create_before_write_trigger()
select scheduler.create_before_write_trigger();
-- unchanged since 0001: trigger scheduler_meetings_after_insert
-- unchanged since 0001: trigger scheduler_meetings_after_update
-- unchanged since 0001: trigger scheduler_meetings_after_delete
