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
as $$
declare
    v_pending pg_catalog.text := scheduler.pending_status();
    v_ids pg_catalog.uuid[];
    v_ends pg_catalog.timestamptz[];
    v_next pg_catalog.timestamptz;
begin
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

create or replace function scheduler.meetings_after_delete()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform scheduler.unregister_jobs(pg_catalog.array_agg(o.id))
    from old_meetings o
    where o.status operator(pg_catalog.=) (select scheduler.pending_status());
    return null;
end
$$;
comment on function scheduler.meetings_after_delete() is
    'Unschedules the jobs of deleted upcoming meetings. security definer: see meetings_after_insert.';

-- (Re)creates the BEFORE trigger with the pending and done words of scheduler.settings as its
-- arguments; configure_statuses() calls it again when the words change. format(%L) quotes them.
create or replace function scheduler.create_before_write_trigger()
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    drop trigger if exists scheduler_meetings_before_write on public.meetings;
    execute (select pg_catalog.format(
        'create trigger scheduler_meetings_before_write before insert or update on public.meetings '
        'for each row execute function scheduler.meetings_before_write(%L, %L)',
        s.pending_status, s.done_status) from scheduler.settings s);
end
$$;
comment on function scheduler.create_before_write_trigger() is
    'Creates the BEFORE trigger on meetings with the pending and done words as its arguments.';
select scheduler.create_before_write_trigger();
-- unchanged since 0001: trigger scheduler_meetings_after_insert
-- unchanged since 0001: trigger scheduler_meetings_after_update
-- unchanged since 0001: trigger scheduler_meetings_after_delete
