-- Timed transitions for any table. A transition names a table, its key column, a time
-- column, a state column, the states it applies to (pending) and the state to set: a pending row
-- gets one pg_cron job, <job_prefix><key>, at the first minute at or after its time, and becomes
-- to_state then, exactly as an upcoming meeting becomes done. Meetings are the first, builtin
-- transition: their own functions and triggers (20_functions.sql, 30_triggers.sql) stay as they
-- are and the registry only lists them. The others are served by the generic functions below,
-- which reach their table and columns only through the registry: identifiers through
-- format('%I') (the table as schema and name from the catalog), values as parameters or %L.

create table if not exists scheduler.transitions (
    name pg_catalog.text primary key
        constraint transitions_name_check check (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    relation pg_catalog.regclass not null,
    key_column pg_catalog.name not null,
    time_column pg_catalog.name not null,
    state_column pg_catalog.name not null,
    from_states pg_catalog.text[] not null
        constraint transitions_from_states_check check (pg_catalog.cardinality(from_states) > 0),
    to_state pg_catalog.text not null,
    job_prefix pg_catalog.text not null unique
        constraint transitions_job_prefix_check check (job_prefix ~ '^[a-z][a-z0-9-]*-$'),
    builtin boolean not null default false,
    created_at pg_catalog.timestamptz not null default pg_catalog.now(),
    -- paused by name: its triggers register no job, its jobs change nothing, recover,
    -- reconcile, the sweep and the waker leave it alone (scheduler.transition_active)
    paused boolean not null default false,
    -- its own job horizon (0011, 46_horizon.sql); null: the default (scheduler.settings)
    job_horizon pg_catalog.interval
        constraint transitions_job_horizon_check check (job_horizon >= interval '15 minutes'),
    constraint transitions_relation_time_key unique (relation, time_column)
);
comment on table scheduler.transitions is
    'Timed transitions: rows of relation in one of from_states get to_state at time_column, '
    'through one pg_cron job each named <job_prefix><key>. meetings is the builtin first one.';
alter table scheduler.transitions enable row level security;
insert into scheduler.transitions
    (name, relation, key_column, time_column, state_column, from_states, to_state, job_prefix,
     builtin)
select 'meetings', 'public.meetings'::pg_catalog.regclass, 'id', 'end_time', 'status',
       array[s.pending_status], s.done_status, 'meeting-status-', true
from scheduler.settings s
on conflict (name) do nothing;

-- Whether a transition acts: the scheduler as a whole is enabled (scheduler.settings,
-- pause/resume) and the transition is not paused by name. scheduler.is_enabled() is this for
-- the builtin meetings transition. plpgsql: written before the registry exists on a new database.
create or replace function scheduler.transition_active(p_name pg_catalog.text)
returns boolean
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return coalesce((select s.enabled from scheduler.settings s), true)
           and not coalesce((select t.paused from scheduler.transitions t
                             where t.name operator(pg_catalog.=) p_name), false);
end
$$;
comment on function scheduler.transition_active(pg_catalog.text) is
    'Whether a transition acts: the scheduler is enabled and the transition is not paused by name.';

-- A registered transition, as the functions below need it: the registry row plus the table as
-- schema.table quoted from the catalog and the key column's type (for casts of a key given as
-- text). Raises no_data_found for an unknown name.
create or replace function scheduler.transition_target(p_name pg_catalog.text,
    out name pg_catalog.text, out table_sql pg_catalog.text, out key_column pg_catalog.name,
    out key_type pg_catalog.text, out time_column pg_catalog.name,
    out state_column pg_catalog.name, out from_states pg_catalog.text[],
    out to_state pg_catalog.text, out job_prefix pg_catalog.text, out builtin boolean)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    select t.name, pg_catalog.format('%I.%I', n.nspname, c.relname), t.key_column,
           pg_catalog.format_type(a.atttypid, a.atttypmod), t.time_column, t.state_column,
           t.from_states, t.to_state, t.job_prefix, t.builtin
    into name, table_sql, key_column, key_type, time_column, state_column, from_states,
         to_state, job_prefix, builtin
    from scheduler.transitions t
    join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) t.relation
    join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
    join pg_catalog.pg_attribute a on a.attrelid operator(pg_catalog.=) c.oid
                                  and a.attname operator(pg_catalog.=) t.key_column
    where t.name operator(pg_catalog.=) p_name;
    if not found then
        raise exception 'no transition named %', coalesce(p_name, 'null')
            using errcode = 'no_data_found',
                  hint = 'scheduler-admin transitions list shows the registered ones.';
    end if;
end
$$;

-- The jobs of a set of rows of a transition: name <job_prefix><key>, the same five-field UTC
-- schedule as a meeting's job (the first minute at or after the time: the expression of
-- scheduler.job_specs(), 20_functions.sql; a test compares the two), and the command.
create or replace function scheduler.transition_job_specs(p_name pg_catalog.text,
                                                          p_job_prefix pg_catalog.text,
                                                          p_keys pg_catalog.text[],
                                                          p_times pg_catalog.timestamptz[])
returns table (job_name pg_catalog.text, schedule pg_catalog.text, command pg_catalog.text)
language sql stable parallel safe
rows 10000
set search_path = pg_catalog, pg_temp
as $$
select p_job_prefix operator(pg_catalog.||) u.key,
       pg_catalog.to_char(u.minute, 'FMMI FMHH24 FMDD FMMM') operator(pg_catalog.||) ' *',
       pg_catalog.format(
           'set statement_timeout = %L; select scheduler.complete_transition(%L, %L)',
           '2min', p_name, u.key)
from (select r.key,
             pg_catalog.date_trunc('minute', (r.time at time zone 'UTC')
                                   operator(pg_catalog.+) interval '59.999999 seconds') as minute
      from rows from (pg_catalog.unnest(p_keys), pg_catalog.unnest(p_times)) as r(key, time)) u
where u.key is not null
$$;

-- Registers the jobs of the pending rows among a set (keys as text, their times).
-- 0011: those beyond the transition's job horizon (46_horizon.sql) get none, and lose the one
-- they had (moved out of the horizon, through unregister_transition_jobs(), which writes
-- cron.job only when a job matches), as register_jobs() does for meetings.
create or replace function scheduler.register_transition_jobs(p_name pg_catalog.text,
                                                              p_keys pg_catalog.text[],
                                                              p_times pg_catalog.timestamptz[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_prefix pg_catalog.text := (select t.job_prefix from scheduler.transitions t
                                 where t.name operator(pg_catalog.=) p_name);
    v_cutoff pg_catalog.timestamptz := scheduler.job_cutoff(p_name);
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
    v_beyond pg_catalog.text[];
begin
    if coalesce(pg_catalog.cardinality(p_keys), 0) operator(pg_catalog.=) 0 then
        return 0;
    end if;
    if v_cutoff operator(pg_catalog.<>) 'infinity'::pg_catalog.timestamptz then
        select pg_catalog.array_agg(r.key) filter (where r.within),
               pg_catalog.array_agg(r.time) filter (where r.within),
               pg_catalog.array_agg(r.key) filter (where not r.within)
        into v_keys, v_times, v_beyond
        from (select x.key, x.time, coalesce(x.time operator(pg_catalog.<=) v_cutoff, true) as within
              from rows from (pg_catalog.unnest(p_keys), pg_catalog.unnest(p_times)) as x(key, time)) r;
        perform scheduler.unregister_transition_jobs(p_name, v_beyond);
        if v_keys is null then
            return 0;
        end if;
        p_keys := v_keys;
        p_times := v_times;
    end if;
    -- pg_cron keeps job names of at most 63 bytes (type name): a longer one would be cut, and
    -- its job could never be found again by its name
    if exists (select 1 from pg_catalog.unnest(p_keys) as k(key)
               where pg_catalog.octet_length(v_prefix operator(pg_catalog.||) k.key)
                     operator(pg_catalog.>) 63) then
        raise exception 'a key of transition % is too long for a job name (% plus the key must fit in 63 bytes)',
                        p_name, pg_catalog.quote_literal(v_prefix)
            using errcode = 'string_data_right_truncation',
                  hint = 'Use shorter keys, or register the transition again with a shorter --prefix.';
    end if;
    return (select scheduler.schedule_jobs(pg_catalog.array_agg(s.job_name),
                                           pg_catalog.array_agg(s.schedule),
                                           pg_catalog.array_agg(s.command))
            from scheduler.transition_job_specs(p_name, v_prefix, p_keys, p_times) s);
end
$$;

create or replace function scheduler.unregister_transition_jobs(p_name pg_catalog.text,
                                                                p_keys pg_catalog.text[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_prefix pg_catalog.text := (select t.job_prefix from scheduler.transitions t
                                 where t.name operator(pg_catalog.=) p_name);
begin
    if coalesce(pg_catalog.cardinality(p_keys), 0) operator(pg_catalog.=) 0 then
        return 0;
    end if;
    return scheduler.unschedule_jobs(array(
        select v_prefix operator(pg_catalog.||) k.key
        from pg_catalog.unnest(p_keys) as k(key) where k.key is not null));
end
$$;

-- The BEFORE trigger of a registered table (row level). Arguments: the transition's name,
-- the key column, the job prefix, the time column, the state column, the state to set, then the
-- pending states. A pending row needs a finite time and a key short enough for a job name (the
-- rule holds while paused too, so that resume never meets a row it cannot register); one whose
-- time has passed gets the state to set at once (and so no job), and is noted in
-- scheduler.write_completions for the AFTER trigger's completion event. security definer for
-- that note only (see meetings_before_write); otherwise it reads and sets only NEW and its
-- arguments.
create or replace function scheduler.transition_before_write()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row pg_catalog.jsonb := pg_catalog.to_jsonb(new);
    v_state pg_catalog.text := v_row operator(pg_catalog.->>) tg_argv[4];
    v_key pg_catalog.text;
    v_time pg_catalog.timestamptz;
begin
    if v_state is null
       or not v_state operator(pg_catalog.=) any (tg_argv[6:pg_catalog.array_upper(tg_argv, 1)]) then
        return new;
    end if;
    v_time := (v_row operator(pg_catalog.->>) tg_argv[3])::pg_catalog.timestamptz;
    if v_time is null then
        raise exception '%: % is required for a row in state %', tg_table_name, tg_argv[3], v_state
            using errcode = 'not_null_violation',
                  hint = pg_catalog.format('Give %s as a timestamp with time zone, e.g. '
                                           '2026-12-01 15:30:00+00.', tg_argv[3]);
    end if;
    if not pg_catalog.isfinite(v_time)
       or v_time operator(pg_catalog.<) '0001-01-01 00:00:00+00'::pg_catalog.timestamptz
       or v_time operator(pg_catalog.>=) '10000-01-01 00:00:00+00'::pg_catalog.timestamptz then
        raise exception '%: % % is out of range', tg_table_name, tg_argv[3], v_time
            using errcode = 'datetime_field_overflow',
                  hint = 'Give a finite time between the years 1 and 9999.';
    end if;
    v_key := v_row operator(pg_catalog.->>) tg_argv[1];
    -- pg_cron keeps job names of at most 63 bytes (type name): a longer one would be cut, and
    -- two keys cut alike would share one job
    if pg_catalog.octet_length(tg_argv[2] operator(pg_catalog.||) v_key) operator(pg_catalog.>) 63 then
        raise exception '%: key % is too long for a job name (% plus the key must fit in 63 bytes)',
                        tg_table_name, pg_catalog.left(v_key, 80), pg_catalog.quote_literal(tg_argv[2])
            using errcode = 'string_data_right_truncation',
                  hint = 'Use shorter keys, or register the transition again with a shorter --prefix.';
    end if;
    if v_time operator(pg_catalog.<=) pg_catalog.now() then
        new := pg_catalog.jsonb_populate_record(
            new, pg_catalog.jsonb_build_object(tg_argv[4], tg_argv[5]));
        -- the AFTER statement trigger records the completion event (path write) of the rows
        -- noted here (the setting only tells it to look: any session may set it)
        insert into scheduler.write_completions (txid, transition, row_key)
        values (pg_catalog.pg_current_xact_id(), tg_argv[0], v_key);
        -- (PERFORM is a query: only the first completion of the statement pays for it)
        if pg_catalog.current_setting('scheduler.transition_completed_on_write', true)
           is distinct from 'on' then
            perform pg_catalog.set_config('scheduler.transition_completed_on_write', 'on', true);
        end if;
    end if;
    return new;
end
$$;
comment on function scheduler.transition_before_write() is
    'BEFORE trigger of a registered transition''s table: a pending row needs a finite time and a '
    'key that fits a job name; one whose time has passed gets the state to set at once (its '
    'completion noted for the AFTER trigger''s event).';

-- The AFTER statement triggers of a registered table (insert, update, delete; argument: the
-- transition's name), with transition tables new_rows / old_rows, read with dynamic SQL whose
-- identifiers come from the registry through format('%I'). security definer: jobs belong to the
-- owner of our functions (the owner of the table, checked at registration). A hash join only:
-- see meetings_after_update (30_triggers.sql) for what a cached nested loop cost.
create or replace function scheduler.transition_after_write()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set enable_nestloop = off
as $$
declare
    v_t pg_catalog.record;
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
    v_next pg_catalog.timestamptz;
begin
    select * into v_t from scheduler.transition_target(tg_argv[0]);
    -- rows the BEFORE trigger gave the to-state because their time had passed (0007): one
    -- completion event each, path write (rows of the statement that reached the to-state from a
    -- pending state, or were inserted so, with a time already passed)
    -- (0009: only the rows the BEFORE trigger noted in scheduler.write_completions in this
    -- transaction; the setting is a hint any session may set, and the notes are deleted)
    if tg_op operator(pg_catalog.<>) 'DELETE'
       and pg_catalog.current_setting('scheduler.transition_completed_on_write', true)
           operator(pg_catalog.=) 'on' then
        perform pg_catalog.set_config('scheduler.transition_completed_on_write', '', true);
        execute pg_catalog.format(
            'with noted as ('
            '    delete from scheduler.write_completions w'
            '    where w.txid operator(pg_catalog.=) pg_catalog.pg_current_xact_id()'
            '      and w.transition operator(pg_catalog.=) $1'
            '    returning w.row_key'
            ') '
            'insert into scheduler.completion_events '
            '    (transition, row_key, end_time, completed_at, path, delivery, next_attempt_at) '
            'select $1, n.%I::pg_catalog.text, n.%I, t.at, ''write'', '
            '       case when t.webhooks then ''pending'' end, t.at '
            'from (select pg_catalog.clock_timestamp() as at, '
            '             (select s.webhooks from scheduler.settings s) as webhooks) t '
            'cross join new_rows n %s '
            'where n.%I operator(pg_catalog.=) $2 '
            '  and n.%I operator(pg_catalog.<=) pg_catalog.now() %s '
            '  and n.%I::pg_catalog.text in (select x.row_key from noted x)',
            v_t.key_column, v_t.time_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join old_rows o on o.%1$I operator(pg_catalog.=) n.%1$I',
                                        v_t.key_column) else '' end,
            v_t.state_column, v_t.time_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (o.%1$I is null or o.%2$I operator(pg_catalog.=) any ($3))',
                                        v_t.key_column, v_t.state_column) else '' end,
            v_t.key_column)
        using v_t.name, v_t.to_state, v_t.from_states;
    end if;
    if tg_op operator(pg_catalog.<>) 'INSERT' then
        -- a row that left its pending states, or was deleted, or whose key changed, loses its job
        execute pg_catalog.format(
            'select pg_catalog.array_agg(o.%I::pg_catalog.text) from old_rows o %s '
            'where o.%I operator(pg_catalog.=) any ($1) %s',
            v_t.key_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join new_rows n on n.%1$I operator(pg_catalog.=) o.%1$I',
                                        v_t.key_column) else '' end,
            v_t.state_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (n.%1$I is null or not coalesce(n.%2$I operator(pg_catalog.=) any ($1), false))',
                                        v_t.key_column, v_t.state_column) else '' end)
        into v_keys using v_t.from_states;
        perform scheduler.unregister_transition_jobs(v_t.name, v_keys);
    end if;
    if tg_op operator(pg_catalog.<>) 'DELETE' and scheduler.transition_active(v_t.name) then
        -- a row that became pending, or whose time moved, gets its job (re)registered
        execute pg_catalog.format(
            'select pg_catalog.array_agg(n.%I::pg_catalog.text), pg_catalog.array_agg(n.%I) '
            'from new_rows n %s where n.%I operator(pg_catalog.=) any ($1) %s',
            v_t.key_column, v_t.time_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join old_rows o on o.%1$I operator(pg_catalog.=) n.%1$I',
                                        v_t.key_column) else '' end,
            v_t.state_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (o.%1$I is null or o.%2$I is distinct from n.%2$I '
                                        'or o.%3$I is distinct from n.%3$I)',
                                        v_t.key_column, v_t.state_column, v_t.time_column)
                 else '' end)
        into v_keys, v_times using v_t.from_states;
        perform scheduler.register_transition_jobs(v_t.name, v_keys, v_times);
        -- Tell the application's waker (scheduler_admin/waker.py), which may sleep until a later
        -- time: one notification per statement, delivered at commit, naming the transition and
        -- the earliest time the statement registered (0008; meetings announce theirs on
        -- scheduler_meetings, 30_triggers.sql).
        select pg_catalog.min(t.time) into v_next from pg_catalog.unnest(v_times) as t(time);
        if v_next is not null then
            perform pg_catalog.pg_notify('scheduler_transitions', pg_catalog.jsonb_build_object(
                'transition', v_t.name,
                'time', pg_catalog.to_char(v_next at time zone 'UTC',
                                           'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))::pg_catalog.text);
        end if;
    end if;
    return null;
end
$$;
comment on function scheduler.transition_after_write() is
    'AFTER statement trigger of a registered transition''s table: keeps one job per pending row '
    'and announces the earliest time it registered on channel scheduler_transitions (NOTIFY, '
    'JSON {"transition", "time"}, for the application''s waker). security definer: jobs belong '
    'to the owner of the scheduler''s functions.';

-- (Re)creates the triggers of a transition on its table.
create or replace function scheduler.create_transition_triggers(p_name pg_catalog.text)
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    perform scheduler.drop_transition_triggers(p_name);
    -- arguments (0009): name, key column, job prefix, time column, state column, to-state, the
    -- pending states
    execute pg_catalog.format(
        'create trigger %I before insert or update on %s for each row '
        'execute function scheduler.transition_before_write(%L, %L, %L, %L, %L, %L, %s)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_before_write',
        v_table, p_name, v_t.key_column, v_t.job_prefix, v_t.time_column, v_t.state_column,
        v_t.to_state,
        (select pg_catalog.string_agg(pg_catalog.quote_literal(f.state), ', ')
         from pg_catalog.unnest(v_t.from_states) as f(state)));
    execute pg_catalog.format(
        'create trigger %I after insert on %s referencing new table as new_rows '
        'for each statement execute function scheduler.transition_after_write(%L)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_after_insert',
        v_table, p_name);
    execute pg_catalog.format(
        'create trigger %I after update on %s referencing old table as old_rows new table as new_rows '
        'for each statement execute function scheduler.transition_after_write(%L)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_after_update',
        v_table, p_name);
    execute pg_catalog.format(
        'create trigger %I after delete on %s referencing old table as old_rows '
        'for each statement execute function scheduler.transition_after_write(%L)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_after_delete',
        v_table, p_name);
end
$$;

create or replace function scheduler.drop_transition_triggers(p_name pg_catalog.text)
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_suffix pg_catalog.text;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    foreach v_suffix in array array['before_write', 'after_insert', 'after_update', 'after_delete'] loop
        execute pg_catalog.format('drop trigger if exists %I on %s',
                                  'scheduler_' operator(pg_catalog.||) p_name
                                  operator(pg_catalog.||) '_' operator(pg_catalog.||) v_suffix,
                                  v_table);
    end loop;
end
$$;

-- How many of a transition's four triggers its table has: all of them, or the enabled
-- ones only.
create or replace function scheduler.transition_triggers(p_name pg_catalog.text,
                                                         p_enabled_only boolean)
returns integer
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select pg_catalog.count(*)::integer
from pg_catalog.pg_trigger g
join scheduler.transitions t on t.relation operator(pg_catalog.=) g.tgrelid
where t.name operator(pg_catalog.=) p_name
  and g.tgname operator(pg_catalog.=) any (array(
      select 'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_'
             operator(pg_catalog.||) k.kind
      from pg_catalog.unnest(array['before_write', 'after_insert', 'after_update',
                                   'after_delete']) as k(kind)))
  and (not p_enabled_only or g.tgenabled operator(pg_catalog.<>) 'D')
$$;

-- Marks to_state every pending row of a transition whose time has passed (skipping or waiting
-- for locked rows, as complete_due does for meetings), and records one completion event per row
-- with the path that completed it (completed_at is the clock when the statement ran, read once).
-- The update trigger removes their jobs. The statement is complete_rows()'s (25_safety.sql): a
-- row that cannot be completed is left out and recorded, and never holds up another.
create or replace function scheduler.complete_due_transition(p_name pg_catalog.text,
                                                             p_skip_locked boolean,
                                                             p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    return scheduler.complete_rows(p_name, p_skip_locked, p_path, null);
end
$$;
comment on function scheduler.complete_due_transition(pg_catalog.text, boolean, pg_catalog.text) is
    'Gives the to-state to the pending rows of a transition whose time has passed, recording a '
    'completion event per row with the given path; skipping or waiting for locked rows. A row '
    'that fails is recorded in failing_rows and never holds up another.';

-- What a transition's job runs: completes every due row of the transition, then removes the job
-- if its row is no longer pending (or gone). lock_timeout 5s: a held lock fails the run; later
-- runs and the reconcile job complete the row.
create or replace function scheduler.complete_transition(p_name pg_catalog.text,
                                                         p_key pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_completed integer;
    v_pending boolean;
begin
    -- a job of a transition removed meanwhile (remove_transition unschedules at most 1000 jobs
    -- per transaction where it calls cron.unschedule): the job removes itself (0006)
    if not exists (select 1 from scheduler.transitions t where t.name operator(pg_catalog.=) p_name) then
        perform scheduler.unschedule_jobs(array(
            select j.jobname::pg_catalog.text from cron.job j
            where j.username operator(pg_catalog.=) current_user
              and j.command operator(pg_catalog.=) pg_catalog.format(
                  'set statement_timeout = %L; select scheduler.complete_transition(%L, %L)',
                  '2min', p_name, p_key)));
        return 0;
    end if;
    if not scheduler.transition_active(p_name) then
        return 0;
    end if;
    select * into v_t from scheduler.transition_target(p_name);
    v_completed := scheduler.complete_due_transition(p_name, true, 'job');
    v_table := v_t.table_sql::pg_catalog.regclass;
    -- plpgsql_check: v_t.key_type is format_type() of the key column (transition_target)
    perform 'PRAGMA:disable:security_warnings';
    execute pg_catalog.format(
        'select exists (select 1 from %s r where r.%I operator(pg_catalog.=) $1::%s '
        'and r.%I operator(pg_catalog.=) any ($2))',
        v_table, v_t.key_column, v_t.key_type, v_t.state_column)
    into v_pending using p_key, v_t.from_states;
    perform 'PRAGMA:enable:security_warnings';
    if not v_pending then
        perform scheduler.unregister_transition_jobs(p_name, array[p_key]);
    end if;
    return v_completed;
end
$$;
comment on function scheduler.complete_transition(pg_catalog.text, pg_catalog.text) is
    'Run by a transition''s job <job_prefix><key>: sets to_state on the pending rows whose time '
    'has passed and removes the job if its row is no longer pending.';

-- recover and reconcile for one transition: complete due rows, register missing or wrong jobs,
-- remove orphan jobs (its prefix, no pending row). Reports the counts recover reports.
create or replace function scheduler.repair_transition(p_name pg_catalog.text, p_dry_run boolean,
                                                       p_skip_locked boolean)
returns pg_catalog.jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set jit = off
set enable_nestloop = off
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_total bigint;
    v_overdue bigint;
    v_pending_keys pg_catalog.text[];
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
    v_exist bigint;
    v_missing pg_catalog.text[];
    v_missing_schedules pg_catalog.text[];
    v_missing_commands pg_catalog.text[];
    v_orphans pg_catalog.text[];
    v_removed integer;
    v_errors pg_catalog.jsonb;
    v_beyond bigint;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    -- the pending rows within the job horizon (all without one: a job of one is never an
    -- orphan, as recover treats meetings; 0011: one beyond the horizon has no job yet, and a job
    -- of it is removed) and those not due yet (they must have a job)
    -- 0009: a key too long for a job name (written before the BEFORE trigger checked it, or
    -- with the triggers off) is reported as an error, row by row, and gets no job: registering
    -- it would cut the name (and two keys cut alike would make one statement upsert one job
    -- twice). Its job, if one was stored cut, is an orphan.
    execute pg_catalog.format(
        'select pg_catalog.count(*), pg_catalog.array_agg(r.%I::pg_catalog.text) filter (where r.within), '
        '       pg_catalog.array_agg(r.%I::pg_catalog.text) '
        '           filter (where r.%I operator(pg_catalog.>) pg_catalog.now() and not r.too_long '
        '                   and r.within), '
        '       pg_catalog.array_agg(r.%I) filter (where r.%I operator(pg_catalog.>) pg_catalog.now() '
        '                                             and not r.too_long and r.within), '
        '       coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('
        '           ''key'', pg_catalog.left(r.%I::pg_catalog.text, 80), ''error'', '
        '           pg_catalog.format(''key too long for a job name (%%s plus the key must fit '
                                      'in 63 bytes): shorten the key, or move the row out of %%s'', '
        '                             pg_catalog.quote_literal($2), pg_catalog.array_to_string($1, '', ''))))'
        '           filter (where r.too_long), ''[]''), '
        '       pg_catalog.count(*) filter (where not r.within) '
        'from (select x.*, $3 and pg_catalog.octet_length($2 operator(pg_catalog.||) x.%I::pg_catalog.text) '
        '                  operator(pg_catalog.>) 63 as too_long, '
        '             coalesce(x.%I operator(pg_catalog.<=) $4, true) as within '
        '      from %s x where x.%I operator(pg_catalog.=) any ($1)) r',
        v_t.key_column, v_t.key_column, v_t.time_column, v_t.time_column, v_t.time_column,
        v_t.key_column, v_t.key_column, v_t.time_column, v_table, v_t.state_column)
    into v_total, v_pending_keys, v_keys, v_times, v_errors, v_beyond
    -- $3: whether a key of this type can be too long at all (a uuid has 36 characters, a bigint
    -- at most 20): the length of each key is looked at only when it can
    using v_t.from_states, v_t.job_prefix,
          not (v_t.key_type operator(pg_catalog.=) any (array['uuid', 'bigint', 'integer'])
               and pg_catalog.octet_length(v_t.job_prefix) operator(pg_catalog.+) 36
                   operator(pg_catalog.<=) 63),
          -- $4: the job horizon's end (0011): a row beyond it has no job yet, and a job of one
          -- is removed as an orphan
          scheduler.job_cutoff(p_name);
    -- counted before: the total is the pending rows found, as recover reports for meetings
    if p_dry_run then
        execute pg_catalog.format(
            'select pg_catalog.count(*) from %s r where r.%I operator(pg_catalog.=) any ($1) '
            'and r.%I operator(pg_catalog.<=) pg_catalog.now()',
            v_table, v_t.state_column, v_t.time_column)
        into v_overdue using v_t.from_states;
    else
        v_overdue := scheduler.complete_due_transition(
            p_name, p_skip_locked, case when p_skip_locked then 'reconcile' else 'recover' end);
    end if;
    with expected as materialized (
        select s.job_name, s.schedule, s.command
        from scheduler.transition_job_specs(p_name, v_t.job_prefix, v_keys, v_times) s
    ), have as (
        select e.job_name, e.schedule, e.command,
               j.schedule operator(pg_catalog.=) e.schedule
               and j.command operator(pg_catalog.=) e.command as ok
        from expected e
        left join cron.job j on j.jobname operator(pg_catalog.=) e.job_name
                            and j.username operator(pg_catalog.=) current_user
    )
    select pg_catalog.count(*) filter (where h.ok),
           pg_catalog.array_agg(h.job_name) filter (where h.ok is not true),
           pg_catalog.array_agg(h.schedule) filter (where h.ok is not true),
           pg_catalog.array_agg(h.command) filter (where h.ok is not true),
           array(select j.jobname::pg_catalog.text from cron.job j
                 where j.username operator(pg_catalog.=) current_user
                   -- the prefix is [a-z0-9-]: no LIKE wildcard in it
                   and j.jobname operator(pg_catalog.~~) (v_t.job_prefix operator(pg_catalog.||) '%')
                   -- an anti join (hashed): `<> all (array)` compared each job with every
                   -- pending key, 2 s for 20,000 rows (0008)
                   and not exists (
                       select from pg_catalog.unnest(v_pending_keys) as k(key)
                       where (v_t.job_prefix operator(pg_catalog.||) k.key)
                             operator(pg_catalog.=) j.jobname::pg_catalog.text))
    into v_exist, v_missing, v_missing_schedules, v_missing_commands, v_orphans
    from have h;
    if not p_dry_run then
        perform scheduler.schedule_jobs(v_missing, v_missing_schedules, v_missing_commands);
        v_removed := scheduler.unschedule_jobs(v_orphans);
        -- triggers dropped or lost with a rebuilt table are re-created (0006), as on SQLite
        if scheduler.transition_triggers(p_name, false) operator(pg_catalog.<) 4 then
            perform scheduler.create_transition_triggers(p_name);
        end if;
        -- failing entries of rows gone or no longer pending (0009)
        perform scheduler.clear_failing_rows(p_name);
    end if;
    return pg_catalog.jsonb_build_object(
        'total', v_total,
        'jobs_scheduled', coalesce(pg_catalog.cardinality(v_missing), 0),
        'jobs_already_exist', coalesce(v_exist, 0),
        'overdue_completed', v_overdue,
        'orphans_removed', coalesce(v_removed, pg_catalog.cardinality(v_orphans), 0))
        -- pending rows beyond the job horizon (0011; the key only with a horizon): no job yet
        operator(pg_catalog.||) case when scheduler.job_horizon(p_name) is not null
                                     then pg_catalog.jsonb_build_object('beyond_horizon', v_beyond)
                                     else '{}'::pg_catalog.jsonb end
        -- rows it could not serve, one by one (0009; the key only when there are some)
        operator(pg_catalog.||) case when pg_catalog.jsonb_array_length(v_errors) operator(pg_catalog.>) 0
                                     then pg_catalog.jsonb_build_object('errors', v_errors)
                                     else '{}'::pg_catalog.jsonb end;
end
$$;

-- Every registered transition but the builtin one, whose table still exists and that is not
-- paused by name: what recover, reconcile and the sweep repair or complete.
create or replace function scheduler.other_transitions()
returns setof pg_catalog.text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select t.name from scheduler.transitions t
where not t.builtin and not t.paused
  and exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation)
order by t.name
$$;

-- The transitions but the builtin one whose table still exists, paused or not: all of them, or
-- the one named (none when p_name is the builtin one). What list_jobs, history and doctor show.
create or replace function scheduler.named_transitions(p_name pg_catalog.text)
returns setof pg_catalog.text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select t.name from scheduler.transitions t
where not t.builtin
  and (p_name is null or t.name operator(pg_catalog.=) p_name)
  and exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation)
order by t.name
$$;

-- The names of the transitions paused by name, null when none is.
create or replace function scheduler.paused_transitions()
returns pg_catalog.jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select pg_catalog.jsonb_agg(t.name order by not t.builtin, t.name)
from scheduler.transitions t where t.paused
$$;

-- recover/reconcile of every other transition: {name: report}, null when there is none. Each
-- transition in isolation: one that fails is reported with its error, in a
-- subtransaction, and the others are repaired all the same.
create or replace function scheduler.repair_transitions(p_dry_run boolean, p_skip_locked boolean)
returns pg_catalog.jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name pg_catalog.text;
    v_result pg_catalog.jsonb;
    v_report pg_catalog.jsonb;
begin
    for v_name in select o.name from scheduler.other_transitions() o(name) loop
        begin
            v_report := scheduler.repair_transition(v_name, p_dry_run, p_skip_locked);
        exception when others then
            v_report := pg_catalog.jsonb_build_object(
                'errors', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('error', sqlerrm)));
        end;
        v_result := coalesce(v_result, '{}'::pg_catalog.jsonb)
                    operator(pg_catalog.||) pg_catalog.jsonb_build_object(v_name, v_report);
    end loop;
    return v_result;
end
$$;

-- The seconds sweep and the waker for every other transition that acts (skipping locked rows;
-- the path of their events). Each transition in isolation (a held lock on one table fails that
-- one only).
create or replace function scheduler.sweep_transitions(p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name pg_catalog.text;
    v_count integer := 0;
begin
    for v_name in select o.name from scheduler.other_transitions() o(name) loop
        begin
            v_count := v_count operator(pg_catalog.+)
                       scheduler.complete_due_transition(v_name, true, p_path);
        exception when others then
            raise warning 'scheduler: completing transition % failed: %', v_name, sqlerrm;
        end;
    end loop;
    return v_count;
end
$$;

-- Registers a transition: checks the table and columns, installs the triggers and an index for
-- the due rows, completes the rows already due and registers a job per pending row. security
-- definer (executed by the owner of our functions only: no grant): the triggers and jobs belong
-- to that role, which must own the table.
create or replace function scheduler.add_transition(p_name pg_catalog.text,
                                                    p_table pg_catalog.regclass,
                                                    p_key_column pg_catalog.text,
                                                    p_time_column pg_catalog.text,
                                                    p_state_column pg_catalog.text,
                                                    p_from_states pg_catalog.text[],
                                                    p_to_state pg_catalog.text,
                                                    p_job_prefix pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_prefix pg_catalog.text := coalesce(p_job_prefix,
        pg_catalog.replace(p_name, '_', '-') operator(pg_catalog.||) '-status-');
    v_owner pg_catalog.name;
    -- security definer: current_user is the owner of our functions, the role jobs run as
    v_us pg_catalog.name := current_user;
    v_table pg_catalog.text;
    v_column pg_catalog.text;
    v_type pg_catalog.text;
    v_expected pg_catalog.text[];
    v_grantees pg_catalog.text;
    v_completed integer;
    v_registered integer;
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
begin
    if p_name is null or p_name !~ '^[a-z][a-z0-9_]{0,39}$' then
        raise exception 'invalid transition name %', coalesce(pg_catalog.quote_literal(p_name), 'null')
            using errcode = 'invalid_parameter_value',
                  hint = 'Use 1 to 40 lower-case letters, digits or _, starting with a letter.';
    end if;
    if exists (select 1 from scheduler.transitions t where t.name operator(pg_catalog.=) p_name) then
        raise exception 'a transition named % exists already', p_name
            using errcode = 'duplicate_object',
                  hint = 'Remove it first (scheduler-admin transitions remove), or choose another name.';
    end if;
    if p_table is null then
        raise exception 'add_transition needs a table' using errcode = 'null_value_not_allowed';
    end if;
    select pg_catalog.format('%I.%I', n.nspname, c.relname), r.rolname
    into v_table, v_owner
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
    join pg_catalog.pg_roles r on r.oid operator(pg_catalog.=) c.relowner
    where c.oid operator(pg_catalog.=) p_table and c.relkind operator(pg_catalog.=) any (array['r', 'p']::pg_catalog."char"[]);
    if v_table is null then
        raise exception '% is not a table', p_table
            using errcode = 'wrong_object_type', hint = 'Give a table, e.g. public.memberships.';
    end if;
    -- Jobs and triggers run as the owner of our functions: it must own the table, or writes to
    -- the table would run our triggers as a role that may not even read it (and a table owned by
    -- someone else could make our jobs run that owner's triggers as us).
    if v_owner operator(pg_catalog.<>) v_us then
        raise exception '% belongs to %, not to %, the role the scheduler''s jobs run as', v_table, v_owner, v_us
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format('Run: alter table %s owner to %I; then register it again.', v_table, v_us);
    end if;
    -- Only the owner may add triggers, truncate or reference the table, or any partition or
    -- child of it (0009): another role's trigger would run as us when a job writes. Those
    -- privileges are taken back from every other role; a table below it that another role owns,
    -- or that carries a trigger another role wrote, is refused (our jobs would write it as us).
    if exists (select 1 from pg_catalog.unnest(scheduler.unsafe_relations(p_table))) then
        select pg_catalog.string_agg(u.relid::pg_catalog.regclass::pg_catalog.text, ', ')
        into v_grantees from pg_catalog.unnest(scheduler.unsafe_relations(p_table)) as u(relid);
        raise exception '% (or a partition of it) is owned by another role or has a trigger another role wrote: %',
                        v_table, v_grantees
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format('Give every partition to %I (alter table ... owner to %I) '
                                           'and drop the triggers whose function another role owns '
                                           '(scheduler-admin doctor lists them), then register it again.',
                                           v_us, v_us);
    end if;
    perform scheduler.secure_table(p_table);
    foreach v_column in array array[p_key_column, p_time_column, p_state_column] loop
        select pg_catalog.format_type(a.atttypid, null) into v_type
        from pg_catalog.pg_attribute a
        where a.attrelid operator(pg_catalog.=) p_table
          and a.attname operator(pg_catalog.=) v_column and a.attnum > 0 and not a.attisdropped;
        v_expected := case v_column
            when p_key_column then array['uuid', 'bigint', 'integer', 'text', 'character varying']
            when p_time_column then array['timestamp with time zone']
            else array['text', 'character varying'] end;
        if v_type is null then
            raise exception '% has no column %', v_table, coalesce(pg_catalog.quote_ident(v_column), 'null')
                using errcode = 'undefined_column',
                      hint = 'Give the names of its key, time and state columns.';
        end if;
        if not v_type operator(pg_catalog.=) any (v_expected) then
            raise exception '%.% has type %, expected %', v_table, pg_catalog.quote_ident(v_column), v_type,
                            pg_catalog.array_to_string(v_expected, ' or ')
                using errcode = 'datatype_mismatch',
                      hint = pg_catalog.format('Change it, e.g. alter table %s alter column %I type %s.',
                                               v_table, v_column, v_expected[1]);
        end if;
    end loop;
    if not exists (
        select 1 from pg_catalog.pg_index i
        where i.indrelid operator(pg_catalog.=) p_table
          and i.indisunique and i.indpred is null and i.indexprs is null
          and i.indnkeyatts operator(pg_catalog.=) 1
          and i.indkey[0] operator(pg_catalog.=) (
              select a.attnum from pg_catalog.pg_attribute a
              where a.attrelid operator(pg_catalog.=) p_table
                and a.attname operator(pg_catalog.=) p_key_column)) then
        raise exception '%.% is not unique: it needs a primary key or a unique constraint', v_table, p_key_column
            using errcode = 'invalid_table_definition',
                  hint = pg_catalog.format('Each row''s job is named after its key. Run: alter table %s add unique (%I);',
                                           v_table, p_key_column);
    end if;
    if coalesce(pg_catalog.cardinality(p_from_states), 0) operator(pg_catalog.=) 0
       or pg_catalog.array_position(p_from_states, null) is not null
       or p_to_state is null or p_to_state operator(pg_catalog.=) any (p_from_states) then
        raise exception 'a transition needs one or more states to leave and a different state to set'
            using errcode = 'invalid_parameter_value',
                  hint = 'e.g. from active to expired.';
    end if;
    if v_prefix !~ '^[a-z][a-z0-9-]*-$' or pg_catalog.starts_with(v_prefix, 'meeting-status-')
       or exists (select 1 from scheduler.transitions t
                  where pg_catalog.starts_with(t.job_prefix, v_prefix)
                     or pg_catalog.starts_with(v_prefix, t.job_prefix)) then
        raise exception 'job prefix % is invalid or overlaps another transition''s', pg_catalog.quote_literal(v_prefix)
            using errcode = 'invalid_parameter_value',
                  hint = 'Give lower-case letters, digits and -, ending with -, that no other '
                         'transition''s prefix starts with (scheduler-admin transitions list).';
    end if;
    if exists (select 1 from scheduler.transitions t
               where t.relation operator(pg_catalog.=) p_table
                 and t.time_column operator(pg_catalog.=) p_time_column) then
        raise exception '%.% is registered already', v_table, p_time_column
            using errcode = 'duplicate_object';
    end if;

    insert into scheduler.transitions
        (name, relation, key_column, time_column, state_column, from_states, to_state, job_prefix)
    values (p_name, p_table, p_key_column, p_time_column, p_state_column, p_from_states,
            p_to_state, v_prefix);
    -- the due rows are found by the jobs, the sweep and the reconcile job: index them
    execute pg_catalog.format(
        'create index if not exists %I on %s (%I) where %I in (%s)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_due_idx',
        p_table, p_time_column, p_state_column,
        (select pg_catalog.string_agg(pg_catalog.quote_literal(f.state), ', ')
         from pg_catalog.unnest(p_from_states) as f(state)));
    perform scheduler.create_transition_triggers(p_name);
    v_completed := scheduler.complete_due_transition(p_name, false, 'recover');
    execute pg_catalog.format(
        'select pg_catalog.array_agg(r.%I::pg_catalog.text), pg_catalog.array_agg(r.%I) '
        'from %s r where r.%I operator(pg_catalog.=) any ($1)',
        p_key_column, p_time_column, p_table, p_state_column)
    into v_keys, v_times using p_from_states;
    v_registered := case when scheduler.transition_active(p_name)
                         then scheduler.register_transition_jobs(p_name, v_keys, v_times) else 0 end;
    return pg_catalog.jsonb_build_object(
        'name', p_name, 'table', v_table, 'job_prefix', v_prefix,
        'jobs_registered', v_registered, 'completed', v_completed);
end
$$;
comment on function scheduler.add_transition(pg_catalog.text, pg_catalog.regclass, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text[], pg_catalog.text, pg_catalog.text) is
    'Registers a timed transition: rows of the table in one of the from states get the to state '
    'at their time column, through one pg_cron job each (<job_prefix><key>).';

-- Removes a transition: its triggers, its index and its jobs; never the table's rows.
create or replace function scheduler.remove_transition(p_name pg_catalog.text)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_t pg_catalog.record;
    v_removed integer;
    v_left bigint;
begin
    select * into v_t from scheduler.transition_target(p_name);
    if v_t.builtin then
        raise exception 'the meetings transition cannot be removed'
            using errcode = 'invalid_parameter_value',
                  hint = 'The migrations own it (alembic downgrade removes everything of ours).';
    end if;
    perform scheduler.drop_transition_triggers(p_name);
    execute pg_catalog.format('drop index if exists %I.%I',
        (select n.nspname from pg_catalog.pg_class c
         join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
         join scheduler.transitions t on t.relation operator(pg_catalog.=) c.oid
         where t.name operator(pg_catalog.=) p_name),
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_due_idx');
    v_removed := scheduler.unschedule_jobs(array(
        select j.jobname::pg_catalog.text from cron.job j
        where j.username operator(pg_catalog.=) current_user
          and j.jobname operator(pg_catalog.~~) (v_t.job_prefix operator(pg_catalog.||) '%')));
    delete from scheduler.transitions t where t.name operator(pg_catalog.=) p_name;
    -- where cron.unschedule is called per job, at most 1000 per transaction: the jobs left
    -- remove themselves when they run (complete_transition), or the reconcile job removes them
    -- (remove_stray_transition_jobs) within a minute
    -- (the key jobs_left only then)
    v_left := (select pg_catalog.count(*) from cron.job j
               where j.username operator(pg_catalog.=) current_user
                 and j.jobname operator(pg_catalog.~~) (v_t.job_prefix operator(pg_catalog.||) '%'));
    return pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'name', p_name, 'jobs_removed', v_removed,
        'jobs_left', case when v_left operator(pg_catalog.>) 0 then v_left end));
end
$$;
comment on function scheduler.remove_transition(pg_catalog.text) is
    'Removes a registered transition''s triggers, index and jobs; never touches the table''s rows.';

-- The registered transitions, meetings first: what each applies to, how many pending rows and
-- jobs it has, and whether it is paused by name.
create or replace function scheduler.transitions()
returns table (name pg_catalog.text, table_name pg_catalog.text, key_column pg_catalog.text,
               time_column pg_catalog.text, state_column pg_catalog.text,
               from_states pg_catalog.text[], to_state pg_catalog.text,
               job_prefix pg_catalog.text, builtin boolean, pending_rows bigint, jobs bigint,
               paused boolean)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name pg_catalog.text;
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_pending bigint;
begin
    for v_name in
        select t.name from scheduler.transitions t
        where exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation)
        order by not t.builtin, t.name
    loop
        select * into v_t from scheduler.transition_target(v_name);
        v_table := v_t.table_sql::pg_catalog.regclass;
        from_states := v_t.from_states;
        to_state := v_t.to_state;
        if v_t.builtin then
            -- the meetings' words live in scheduler.settings (configure_statuses)
            from_states := array[scheduler.pending_status()];
            to_state := scheduler.done_status();
        end if;
        execute pg_catalog.format(
            'select pg_catalog.count(*) from %s r where r.%I operator(pg_catalog.=) any ($1)',
            v_table, v_t.state_column)
        into v_pending using from_states;
        name := v_t.name;
        table_name := v_t.table_sql;
        key_column := v_t.key_column;
        time_column := v_t.time_column;
        state_column := v_t.state_column;
        job_prefix := v_t.job_prefix;
        builtin := v_t.builtin;
        paused := (select t.paused from scheduler.transitions t
                   where t.name operator(pg_catalog.=) v_name);
        pending_rows := v_pending;
        jobs := (select pg_catalog.count(*) from cron.job j
                 where j.username operator(pg_catalog.=) current_user
                   and j.jobname operator(pg_catalog.~~) (v_t.job_prefix operator(pg_catalog.||) '%')
                   and j.jobname operator(pg_catalog.<>) all (array['meeting-status-reconcile',
                                                                   'meeting-status-sweep']));
        return next;
    end loop;
end
$$;
comment on function scheduler.transitions() is
    'The registered timed transitions (meetings first) with their pending rows and jobs.';

-- The jobs of the transitions but the builtin one (all of them, or the one named), as
-- scheduler.list_jobs() shows them: the key is the job name after the prefix; the row's time and
-- state, null when no row has that key (an orphan job). A hash join on the key as text: the
-- key's type varies, the job name is text.
create or replace function scheduler.transition_jobs(p_name pg_catalog.text)
returns table (meeting_id pg_catalog.uuid, job_id bigint, job_name pg_catalog.text,
               schedule pg_catalog.text, next_run pg_catalog.timestamptz,
               end_time pg_catalog.timestamptz, meeting_status pg_catalog.text, active boolean,
               transition pg_catalog.text, key pg_catalog.text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
set jit = off
set enable_nestloop = off
as $$
declare
    -- pg_cron 1.5+ has cron.job.active (see list_jobs): one of two constants
    v_has_active boolean := exists (
            select 1 from pg_catalog.pg_attribute a
            where a.attrelid operator(pg_catalog.=) 'cron.job'::pg_catalog.regclass
              and a.attname operator(pg_catalog.=) 'active' and not a.attisdropped);
    v_name pg_catalog.text;
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_key_from integer;
begin
    for v_name in select n.name from scheduler.named_transitions(p_name) n(name) loop
        select * into v_t from scheduler.transition_target(v_name);
        v_table := v_t.table_sql::pg_catalog.regclass;
        v_key_from := pg_catalog.length(v_t.job_prefix) operator(pg_catalog.+) 1;
        return query execute pg_catalog.format($query$
select null::pg_catalog.uuid, j.jobid, j.jobname::pg_catalog.text, j.schedule,
       scheduler.next_run(j.schedule, pg_catalog.now()), r.%I, r.%I::pg_catalog.text, j.active,
       %L::pg_catalog.text, j.key
from (select c.jobid, c.jobname, c.schedule, %s as active,
             pg_catalog.substr(c.jobname::pg_catalog.text, %s) as key
      from cron.job c
      where c.username operator(pg_catalog.=) current_user
        -- the prefix is [a-z0-9-]: no LIKE wildcard in it
        and c.jobname operator(pg_catalog.~~) %L) j
left join %s r on r.%I::pg_catalog.text operator(pg_catalog.=) j.key
$query$,
            v_t.time_column, v_t.state_column, v_name,
            case when v_has_active then 'c.active' else 'true' end, v_key_from,
            v_t.job_prefix operator(pg_catalog.||) '%', v_table, v_t.key_column);
    end loop;
end
$$;
comment on function scheduler.transition_jobs(pg_catalog.text) is
    'The jobs of the registered transitions but meetings (or of the one named), as list_jobs '
    'shows them.';

-- The earliest time of a pending row of a transition, null when none is pending: what the waker
-- sleeps until. The pending states as a literal array, so that the planner matches the partial
-- index scheduler_<name>_due_idx.
create or replace function scheduler.transition_next_time(p_name pg_catalog.text)
returns pg_catalog.timestamptz
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_next pg_catalog.timestamptz;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    execute pg_catalog.format(
        'select pg_catalog.min(r.%I) from %s r '
        'where r.%I::pg_catalog.text operator(pg_catalog.=) any (%L::pg_catalog.text[])',
        v_t.time_column, v_table, v_t.state_column, v_t.from_states)
    into v_next;
    return v_next;
end
$$;

-- What doctor checks for a transition but the builtin one: its triggers, the jobs its pending
-- rows lack and the orphan jobs of its prefix (a dry run of its repair), its rows overdue by
-- over two minutes, whether it is paused. security definer: doctor runs it as service_role over
-- REST too.
create or replace function scheduler.transition_health(p_name pg_catalog.text)
returns pg_catalog.jsonb
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_repair pg_catalog.jsonb;
    v_triggers integer;
    v_overdue bigint;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    if v_t.builtin then
        raise exception 'meetings is checked by scheduler.health()'
            using errcode = 'invalid_parameter_value';
    end if;
    v_triggers := scheduler.transition_triggers(p_name, true);
    execute pg_catalog.format(
        'select pg_catalog.count(*) from %s r where r.%I operator(pg_catalog.=) any ($1) '
        'and r.%I operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-) interval ''2 minutes'')',
        v_table, v_t.state_column, v_t.time_column)
    into v_overdue using v_t.from_states;
    v_repair := scheduler.repair_transition(p_name, true, true);
    return pg_catalog.jsonb_build_object(
        'transition', p_name,
        'table', v_t.table_sql,
        'paused', (select t.paused from scheduler.transitions t
                   where t.name operator(pg_catalog.=) p_name),
        'triggers', v_triggers,
        'pending_rows', v_repair operator(pg_catalog.->) 'total',
        'missing_jobs', v_repair operator(pg_catalog.->) 'jobs_scheduled',
        'orphan_jobs', v_repair operator(pg_catalog.->) 'orphans_removed',
        'beyond_horizon', v_repair operator(pg_catalog.->) 'beyond_horizon',
        'overdue_rows', v_overdue);
end
$$;
comment on function scheduler.transition_health(pg_catalog.text) is
    'doctor''s facts about a registered transition but meetings: triggers present, pending rows, '
    'missing and orphan jobs, rows overdue by over two minutes, paused.';

-- The report of recover, resume and reconcile for one transition but the builtin one.
create or replace function scheduler.transition_report(p_name pg_catalog.text, p_dry_run boolean,
                                                       p_skip_locked boolean)
returns pg_catalog.jsonb
language sql
set search_path = pg_catalog, pg_temp
as $$
select pg_catalog.jsonb_build_object('transition', p_name)
       operator(pg_catalog.||) r.report
       operator(pg_catalog.||) pg_catalog.jsonb_build_object(
           'errors', coalesce(r.report operator(pg_catalog.->) 'errors', '[]'::pg_catalog.jsonb),
           'success', coalesce(pg_catalog.jsonb_array_length(r.report operator(pg_catalog.->) 'errors'), 0)
                      operator(pg_catalog.=) 0,
           'dry_run', p_dry_run)
from (select scheduler.repair_transition(p_name, p_dry_run, p_skip_locked) as report) r
$$;

-- The jobs of transitions no longer registered (left by remove_transition on the per-call path,
-- see complete_transition): removed by the reconcile job, bounded like any unscheduling.
create or replace function scheduler.remove_stray_transition_jobs()
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    return scheduler.unschedule_jobs(array(
        select j.jobname::pg_catalog.text
        from cron.job j
        cross join lateral pg_catalog.regexp_match(
            j.command, 'select scheduler\.complete_transition\(''([a-z][a-z0-9_]*)'', ') m
        where j.username operator(pg_catalog.=) current_user
          and j.command operator(pg_catalog.~~) '%select scheduler.complete_transition(%'
          and not exists (select 1 from scheduler.transitions t
                          where t.name operator(pg_catalog.=) m[1])));
end
$$;
