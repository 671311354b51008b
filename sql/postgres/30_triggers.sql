-- Triggers on public.meetings. A row-level BEFORE trigger validates the row and completes a
-- meeting whose end time has already passed; statement-level AFTER triggers (with transition
-- tables, so that one INSERT ... SELECT or UPDATE of many rows is handled as a set) register and
-- unschedule jobs.

create or replace function scheduler.meetings_before_write()
returns pg_catalog.trigger
language plpgsql
-- security definer: it notes the meetings it completes in scheduler.write_completions,
-- which only the owner may write, so that a writer cannot make the AFTER trigger record events
-- of completions the scheduler never made. Otherwise it reads and sets only NEW and its
-- arguments (the pending and done words, given when the trigger is created) and calls
-- pg_catalog functions. No role but the owner may execute it (a trigger function can only be
-- attached to a table by a role that may execute it).
security definer
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
        -- the AFTER trigger of this statement records the completion events (path write) of
        -- the meetings noted here (the setting only tells it to look: any session may set it)
        insert into scheduler.write_completions (txid, transition, row_key)
        values (pg_catalog.pg_current_xact_id(), 'meetings', new.id::pg_catalog.text);
        -- (PERFORM is a query: only the first completion of the statement pays for it)
        if pg_catalog.current_setting('scheduler.completed_on_write', true) is distinct from 'on' then
            perform pg_catalog.set_config('scheduler.completed_on_write', 'on', true);
        end if;
        -- completing a meeting sets updated_at where the table has it, as complete_due() does
        -- (0009: the third argument says whether it has it; before, each completed row was
        -- turned into jsonb and back to find out)
        if tg_argv[2] operator(pg_catalog.=) 'updated_at' then
            new.updated_at := pg_catalog.now();
        elsif tg_nargs operator(pg_catalog.<) 3
              and pg_catalog.to_jsonb(new) operator(pg_catalog.?) 'updated_at' then
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
-- triggers below call this when the transaction-local flag scheduler.completed_on_write is on,
-- then lower it. The flag is a hint (any session may set it): only the meetings of the
-- statement that are done and that the BEFORE trigger noted in scheduler.write_completions in
-- this transaction get an event; the notes are deleted.
create or replace function scheduler.record_write_completions(p_meeting_ids pg_catalog.uuid[],
                                                              p_end_times pg_catalog.timestamptz[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
-- hash joins only: see meetings_after_update
set enable_nestloop = off
as $$
declare
    v_count integer;
begin
    perform pg_catalog.set_config('scheduler.completed_on_write', '', true);
    with noted as (
        delete from scheduler.write_completions w
        where w.txid operator(pg_catalog.=) pg_catalog.pg_current_xact_id()
          and w.transition operator(pg_catalog.=) 'meetings'
        returning w.row_key
    )
    insert into scheduler.completion_events
        (meeting_id, end_time, completed_at, path, delivery, next_attempt_at)
    select r.id, r.end_time, t.at, 'write', case when t.webhooks then 'pending' end, t.at
    from (select pg_catalog.clock_timestamp() as at,
                 (select s.webhooks from scheduler.settings s) as webhooks) t
    cross join rows from (pg_catalog.unnest(p_meeting_ids), pg_catalog.unnest(p_end_times))
         as r(id, end_time)
    where r.id is not null
      -- a hashed semi join (= any (array(...)) compared every row with every note)
      and r.id::pg_catalog.text in (select n.row_key from noted n);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function scheduler.record_write_completions(pg_catalog.uuid[], pg_catalog.timestamptz[]) is
    'Records completion events (path write) for the meetings a write completed because their '
    'end_time had passed (those the BEFORE trigger noted in this transaction). Internal: called '
    'by the AFTER triggers on meetings.';

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
-- arguments, and whether meetings has a column updated_at ('updated_at' or ''; the
-- migration and configure_statuses() call it again); configure_statuses() calls it again when
-- the words change. format(%L) quotes them.
create or replace function scheduler.create_before_write_trigger()
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pending pg_catalog.text;
    v_done pg_catalog.text;
    v_updated_at pg_catalog.text := case when exists (
            select 1 from pg_catalog.pg_attribute a
            where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
              and a.attname operator(pg_catalog.=) 'updated_at'
              and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped)
        then 'updated_at' else '' end;
begin
    select s.pending_status, s.done_status into v_pending, v_done from scheduler.settings s;
    drop trigger if exists scheduler_meetings_before_write on public.meetings;
    execute pg_catalog.format(
        'create trigger scheduler_meetings_before_write before insert or update on public.meetings '
        'for each row execute function scheduler.meetings_before_write(%L, %L, %L)',
        v_pending, v_done, v_updated_at);
end
$$;
comment on function scheduler.create_before_write_trigger() is
    'Creates the BEFORE trigger on meetings with the pending and done words and whether the '
    'table has updated_at as its arguments.';
select scheduler.create_before_write_trigger();

drop trigger if exists scheduler_meetings_after_insert on public.meetings;
create trigger scheduler_meetings_after_insert
    after insert on public.meetings
    referencing new table as new_meetings
    for each statement execute function scheduler.meetings_after_insert();

drop trigger if exists scheduler_meetings_after_update on public.meetings;
create trigger scheduler_meetings_after_update
    after update on public.meetings
    referencing old table as old_meetings new table as new_meetings
    for each statement execute function scheduler.meetings_after_update();

drop trigger if exists scheduler_meetings_after_delete on public.meetings;
create trigger scheduler_meetings_after_delete
    after delete on public.meetings
    referencing old table as old_meetings
    for each statement execute function scheduler.meetings_after_delete();
