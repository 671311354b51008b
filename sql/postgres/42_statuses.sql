-- Admin functions, statuses: the words of public.meetings.status the scheduler acts on.
-- Python twin: scheduler_admin/sqlite/statuses.py.
-- Callable with psycopg and through Supabase RPC; the security definer ones because the role
-- that calls them (service_role on Supabase) has no rights on the cron schema. Every one pins
-- search_path = pg_catalog, pg_temp and qualifies every name; all are owned by the owner of
-- public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

-- The words of public.meetings.status the scheduler acts on, for an application whose table uses
-- its own (scheduled/completed, ...). A null argument keeps that word. Each word must satisfy
-- every CHECK constraint of meetings that reads only its status column (evaluated here on the
-- word, as the owner: the constraints are the owner's); the rows whose status is none of the
-- three are reported (left alone: no job, never completed). Then, unless paused, it repairs as
-- recover does, so meetings with the new pending word get their jobs at once.
create or replace function scheduler.configure_statuses(p_pending pg_catalog.text default null,
                                                        p_done pg_catalog.text default null,
                                                        p_cancelled pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_pending pg_catalog.text;
    v_done pg_catalog.text;
    v_cancelled pg_catalog.text;
    v_type pg_catalog.text;
    v_conname pg_catalog.text;
    v_expr pg_catalog.text;
    v_def pg_catalog.text;
    v_word pg_catalog.text;
    v_allowed boolean;
    v_left_alone pg_catalog.jsonb;
    v_repair pg_catalog.jsonb;
begin
    select coalesce(p_pending, s.pending_status), coalesce(p_done, s.done_status),
           coalesce(p_cancelled, s.cancelled_status)
    into v_pending, v_done, v_cancelled
    from scheduler.settings s;
    if v_pending operator(pg_catalog.=) '' or v_done operator(pg_catalog.=) ''
       or v_cancelled operator(pg_catalog.=) ''
       or v_pending operator(pg_catalog.=) v_done or v_pending operator(pg_catalog.=) v_cancelled
       or v_done operator(pg_catalog.=) v_cancelled then
        raise exception 'the pending, done and cancelled statuses must be three different words, got %, %, %',
                        pg_catalog.quote_literal(v_pending), pg_catalog.quote_literal(v_done),
                        pg_catalog.quote_literal(v_cancelled)
            using errcode = 'invalid_parameter_value';
    end if;
    select pg_catalog.format_type(a.atttypid, a.atttypmod) into v_type
    from pg_catalog.pg_attribute a
    where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
      and a.attname operator(pg_catalog.=) 'status';
    for v_conname, v_expr, v_def in
        select c.conname::pg_catalog.text, pg_catalog.pg_get_expr(c.conbin, c.conrelid),
               pg_catalog.pg_get_constraintdef(c.oid)
        from pg_catalog.pg_constraint c
        join pg_catalog.pg_attribute a on a.attrelid operator(pg_catalog.=) c.conrelid
                                      and a.attname operator(pg_catalog.=) 'status'
        where c.conrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
          and c.contype operator(pg_catalog.=) 'c'
          and c.conkey operator(pg_catalog.=) array[a.attnum]
    loop
        foreach v_word in array array[v_pending, v_done, v_cancelled] loop
            -- the constraint's own expression, on a one-row relation whose column status holds
            -- the word (passed as a parameter, never spliced in); a check passes unless false.
            -- plpgsql_check: v_expr is pg_get_expr() of a CHECK constraint of public.meetings
            -- (our owner's table) and v_type format_type() of its column, both from the catalog
            perform 'PRAGMA:disable:security_warnings';
            execute pg_catalog.format(
                'select (%s) is not false from (select $1::%s as status) as meetings',
                v_expr, v_type)
            into v_allowed using v_word;
            perform 'PRAGMA:enable:security_warnings';
            if not v_allowed then
                raise exception 'status % is not allowed by the constraint % of public.meetings (%)',
                                pg_catalog.quote_literal(v_word), v_conname, v_def
                    using errcode = 'check_violation',
                          hint = 'Give the words the table uses (alembic -x pending_status=... '
                                 '-x done_status=... -x cancelled_status=..., or the variables '
                                 'SCHEDULER_PENDING_STATUS, SCHEDULER_DONE_STATUS, '
                                 'SCHEDULER_CANCELLED_STATUS), or change the constraint.';
            end if;
        end loop;
    end loop;
    select coalesce(pg_catalog.jsonb_object_agg(t.status, t.n), '{}') into v_left_alone
    from (select coalesce(m.status::pg_catalog.text, 'null') as status, pg_catalog.count(*) as n
          from public.meetings m
          where m.status is null
             or m.status::pg_catalog.text operator(pg_catalog.<>) all (array[v_pending, v_done, v_cancelled])
          group by 1) t;
    update scheduler.settings s
    set pending_status = v_pending, done_status = v_done, cancelled_status = v_cancelled,
        updated_at = pg_catalog.now()
    where s.pending_status operator(pg_catalog.<>) v_pending
       or s.done_status operator(pg_catalog.<>) v_done
       or s.cancelled_status operator(pg_catalog.<>) v_cancelled;
    if found then
        perform scheduler.create_before_write_trigger();
        if scheduler.is_enabled() then
            perform scheduler.take_lock('repair', true);
            v_repair := scheduler.repair(false, false);
        end if;
    end if;
    raise notice 'meeting statuses: pending %, done %, cancelled %; left alone: %',
                 pg_catalog.quote_literal(v_pending), pg_catalog.quote_literal(v_done),
                 pg_catalog.quote_literal(v_cancelled),
                 case when v_left_alone operator(pg_catalog.=) '{}'::pg_catalog.jsonb then 'none'
                      else v_left_alone::pg_catalog.text end;
    return pg_catalog.jsonb_build_object(
        'pending_status', v_pending, 'done_status', v_done, 'cancelled_status', v_cancelled,
        'left_alone', v_left_alone, 'repair', v_repair);
end
$$;
comment on function scheduler.configure_statuses(pg_catalog.text, pg_catalog.text, pg_catalog.text) is
    'Sets the words of meetings.status the scheduler acts on (pending, done, cancelled), checked '
    'against the status CHECK constraints; reports the statuses left alone; repairs unless paused.';
