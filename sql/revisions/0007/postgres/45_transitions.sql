-- Timed transitions for any table (0005). A transition names a table, its key column, a time
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
    -- paused by name (0006): its triggers register no job, its jobs change nothing, recover,
    -- reconcile, the sweep and the waker leave it alone (scheduler.transition_active)
    paused boolean not null default false,
    constraint transitions_relation_time_key unique (relation, time_column)
);
-- a registry created by 0005 gets the column 0006 added
alter table scheduler.transitions add column if not exists paused boolean not null default false;
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
-- unchanged since 0006: function scheduler.transition_active(p_name pg_catalog.text)
-- unchanged since 0005: function scheduler.transition_target(p_name pg_catalog.text, out name pg_catalog.text, out table_sql pg_catalog.text, out key_column pg_catalog.name, out key_type pg_catalog.text, out time_column pg_catalog.name, out state_column pg_catalog.name, out from_states pg_catalog.text[], out to_state pg_catalog.text, out job_prefix pg_catalog.text, out builtin boolean)
-- unchanged since 0005: function scheduler.transition_job_specs(p_name pg_catalog.text, p_job_prefix pg_catalog.text, p_keys pg_catalog.text[], p_times pg_catalog.timestamptz[])
-- unchanged since 0005: function scheduler.register_transition_jobs(p_name pg_catalog.text, p_keys pg_catalog.text[], p_times pg_catalog.timestamptz[])
-- unchanged since 0005: function scheduler.unregister_transition_jobs(p_name pg_catalog.text, p_keys pg_catalog.text[])

-- The BEFORE trigger of a registered table (row level, security invoker like the meetings' one:
-- it reads and sets only NEW and its arguments). Arguments: the time column, the state column,
-- the state to set, then the pending states. A pending row needs a finite time; one whose time
-- has passed gets the state to set at once (and so no job).
create or replace function scheduler.transition_before_write()
returns pg_catalog.trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row pg_catalog.jsonb := pg_catalog.to_jsonb(new);
    v_state pg_catalog.text := v_row operator(pg_catalog.->>) tg_argv[1];
    v_time pg_catalog.timestamptz;
begin
    if v_state is null
       or not v_state operator(pg_catalog.=) any (tg_argv[3:pg_catalog.array_upper(tg_argv, 1)]) then
        return new;
    end if;
    v_time := (v_row operator(pg_catalog.->>) tg_argv[0])::pg_catalog.timestamptz;
    if v_time is null then
        raise exception '%: % is required for a row in state %', tg_table_name, tg_argv[0], v_state
            using errcode = 'not_null_violation',
                  hint = pg_catalog.format('Give %s as a timestamp with time zone, e.g. '
                                           '2026-12-01 15:30:00+00.', tg_argv[0]);
    end if;
    if not pg_catalog.isfinite(v_time)
       or v_time operator(pg_catalog.<) '0001-01-01 00:00:00+00'::pg_catalog.timestamptz
       or v_time operator(pg_catalog.>=) '10000-01-01 00:00:00+00'::pg_catalog.timestamptz then
        raise exception '%: % % is out of range', tg_table_name, tg_argv[0], v_time
            using errcode = 'datetime_field_overflow',
                  hint = 'Give a finite time between the years 1 and 9999.';
    end if;
    if v_time operator(pg_catalog.<=) pg_catalog.now() then
        new := pg_catalog.jsonb_populate_record(
            new, pg_catalog.jsonb_build_object(tg_argv[1], tg_argv[2]));
        -- the AFTER statement trigger records the completion event (path write; 0007)
        perform pg_catalog.set_config('scheduler.transition_completed_on_write', 'on', true);
    end if;
    return new;
end
$$;
comment on function scheduler.transition_before_write() is
    'BEFORE trigger of a registered transition''s table: a pending row needs a finite time; one '
    'whose time has passed gets the state to set at once.';

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
begin
    select * into v_t from scheduler.transition_target(tg_argv[0]);
    -- rows the BEFORE trigger gave the to-state because their time had passed (0007): one
    -- completion event each, path write (rows of the statement that reached the to-state from a
    -- pending state, or were inserted so, with a time already passed)
    if tg_op operator(pg_catalog.<>) 'DELETE'
       and pg_catalog.current_setting('scheduler.transition_completed_on_write', true)
           operator(pg_catalog.=) 'on' then
        perform pg_catalog.set_config('scheduler.transition_completed_on_write', '', true);
        execute pg_catalog.format(
            'insert into scheduler.completion_events '
            '    (transition, row_key, end_time, completed_at, path, delivery, next_attempt_at) '
            'select $1, n.%1$I::pg_catalog.text, n.%2$I, t.at, ''write'', '
            '       case when t.webhooks then ''pending'' end, t.at '
            'from (select pg_catalog.clock_timestamp() as at, '
            '             (select s.webhooks from scheduler.settings s) as webhooks) t '
            'cross join new_rows n %4$s '
            'where n.%3$I operator(pg_catalog.=) $2 '
            '  and n.%2$I operator(pg_catalog.<=) pg_catalog.now() %5$s',
            v_t.key_column, v_t.time_column, v_t.state_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join old_rows o on o.%1$I operator(pg_catalog.=) n.%1$I',
                                        v_t.key_column) else '' end,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (o.%1$I is null or o.%2$I operator(pg_catalog.=) any ($3))',
                                        v_t.key_column, v_t.state_column) else '' end)
        using v_t.name, v_t.to_state, v_t.from_states;
    end if;
    if tg_op operator(pg_catalog.<>) 'INSERT' then
        -- a row that left its pending states, or was deleted, or whose key changed, loses its job
        execute pg_catalog.format(
            'select pg_catalog.array_agg(o.%1$I::pg_catalog.text) from old_rows o %2$s '
            'where o.%3$I operator(pg_catalog.=) any ($1) %4$s',
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
            'select pg_catalog.array_agg(n.%1$I::pg_catalog.text), pg_catalog.array_agg(n.%2$I) '
            'from new_rows n %4$s where n.%3$I operator(pg_catalog.=) any ($1) %5$s',
            v_t.key_column, v_t.time_column, v_t.state_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join old_rows o on o.%1$I operator(pg_catalog.=) n.%1$I',
                                        v_t.key_column) else '' end,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (o.%1$I is null or o.%2$I is distinct from n.%2$I '
                                        'or o.%3$I is distinct from n.%3$I)',
                                        v_t.key_column, v_t.state_column, v_t.time_column)
                 else '' end)
        into v_keys, v_times using v_t.from_states;
        perform scheduler.register_transition_jobs(v_t.name, v_keys, v_times);
    end if;
    return null;
end
$$;
comment on function scheduler.transition_after_write() is
    'AFTER statement trigger of a registered transition''s table: keeps one job per pending row. '
    'security definer: jobs belong to the owner of the scheduler''s functions.';
-- unchanged since 0005: function scheduler.create_transition_triggers(p_name pg_catalog.text)
-- unchanged since 0005: function scheduler.drop_transition_triggers(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_triggers(p_name pg_catalog.text, p_enabled_only boolean)

-- Marks to_state every pending row of a transition whose time has passed (skipping or waiting
-- for locked rows, as complete_due does for meetings), and records one completion event per row
-- with the path that completed it (0007; completed_at is the clock when the statement ran, read
-- once). The update trigger removes their jobs. The 0006 form without a path is dropped.
drop function if exists scheduler.complete_due_transition(pg_catalog.text, boolean);
create or replace function scheduler.complete_due_transition(p_name pg_catalog.text,
                                                             p_skip_locked boolean,
                                                             p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_count integer;
begin
    select * into v_t from scheduler.transition_target(p_name);
    -- the AFTER trigger records the BEFORE trigger's completions (path write) when this flag is
    -- on; this statement records its own
    perform pg_catalog.set_config('scheduler.transition_completed_on_write', '', true);
    execute pg_catalog.format(
        'with due as ('
        '    select d.%3$I as key from %1$s d'
        '    where d.%2$I operator(pg_catalog.=) any ($1)'
        '      and d.%4$I operator(pg_catalog.<=) pg_catalog.now()'
        '    for update %5$s'
        '), done as ('
        '    update %1$s r set %2$I = $2 from due where r.%3$I operator(pg_catalog.=) due.key'
        '    returning r.%3$I::pg_catalog.text as key, r.%4$I as time'
        '), t as materialized ('
        '    select pg_catalog.clock_timestamp() as at,'
        '           (select s.webhooks from scheduler.settings s) as webhooks'
        ') '
        'insert into scheduler.completion_events'
        '    (transition, row_key, end_time, completed_at, path, delivery, next_attempt_at) '
        'select $3, d.key, d.time, t.at, $4, case when t.webhooks then ''pending'' end, t.at '
        'from t cross join done d',
        v_t.table_sql, v_t.state_column, v_t.key_column, v_t.time_column,
        case when p_skip_locked then 'skip locked' else '' end)
    using v_t.from_states, v_t.to_state, p_name, p_path;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function scheduler.complete_due_transition(pg_catalog.text, boolean, pg_catalog.text) is
    'Gives the to-state to the pending rows of a transition whose time has passed, recording a '
    'completion event per row with the given path; skipping or waiting for locked rows.';

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
    execute pg_catalog.format(
        'select exists (select 1 from %1$s r where r.%2$I operator(pg_catalog.=) $1::%3$s '
        'and r.%4$I operator(pg_catalog.=) any ($2))',
        v_t.table_sql, v_t.key_column, v_t.key_type, v_t.state_column)
    into v_pending using p_key, v_t.from_states;
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
begin
    select * into v_t from scheduler.transition_target(p_name);
    -- the pending rows (all: a job of one is never an orphan, as recover treats meetings) and
    -- those not due yet (they must have a job)
    execute pg_catalog.format(
        'select pg_catalog.count(*), pg_catalog.array_agg(r.%1$I::pg_catalog.text), '
        '       pg_catalog.array_agg(r.%1$I::pg_catalog.text) '
        '           filter (where r.%2$I operator(pg_catalog.>) pg_catalog.now()), '
        '       pg_catalog.array_agg(r.%2$I) filter (where r.%2$I operator(pg_catalog.>) pg_catalog.now()) '
        'from %3$s r where r.%4$I operator(pg_catalog.=) any ($1)',
        v_t.key_column, v_t.time_column, v_t.table_sql, v_t.state_column)
    into v_total, v_pending_keys, v_keys, v_times using v_t.from_states;
    -- counted before: the total is the pending rows found, as recover reports for meetings
    if p_dry_run then
        execute pg_catalog.format(
            'select pg_catalog.count(*) from %1$s r where r.%2$I operator(pg_catalog.=) any ($1) '
            'and r.%3$I operator(pg_catalog.<=) pg_catalog.now()',
            v_t.table_sql, v_t.state_column, v_t.time_column)
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
                   and not j.jobname operator(pg_catalog.=) any (array(
                       select v_t.job_prefix operator(pg_catalog.||) k.key
                       from pg_catalog.unnest(v_pending_keys) as k(key))))
    into v_exist, v_missing, v_missing_schedules, v_missing_commands, v_orphans
    from have h;
    if not p_dry_run then
        perform scheduler.schedule_jobs(v_missing, v_missing_schedules, v_missing_commands);
        v_removed := scheduler.unschedule_jobs(v_orphans);
        -- triggers dropped or lost with a rebuilt table are re-created (0006), as on SQLite
        if scheduler.transition_triggers(p_name, false) operator(pg_catalog.<) 4 then
            perform scheduler.create_transition_triggers(p_name);
        end if;
    end if;
    return pg_catalog.jsonb_build_object(
        'total', v_total,
        'jobs_scheduled', coalesce(pg_catalog.cardinality(v_missing), 0),
        'jobs_already_exist', coalesce(v_exist, 0),
        'overdue_completed', v_overdue,
        'orphans_removed', coalesce(v_removed, pg_catalog.cardinality(v_orphans), 0));
end
$$;
-- unchanged since 0006: function scheduler.other_transitions()
-- unchanged since 0006: function scheduler.named_transitions(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.paused_transitions()
-- unchanged since 0005: function scheduler.repair_transitions(p_dry_run boolean, p_skip_locked boolean)

-- The seconds sweep and the waker for every other transition that acts (skipping locked rows;
-- the path of their events). 0007: the path; the 0006 form without it is dropped.
drop function if exists scheduler.sweep_transitions();
create or replace function scheduler.sweep_transitions(p_path pg_catalog.text)
returns integer
language sql
set search_path = pg_catalog, pg_temp
as $$
select coalesce(pg_catalog.sum(scheduler.complete_due_transition(o.name, true, p_path)), 0)::integer
from scheduler.other_transitions() o(name)
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
    -- Only the owner may add triggers: another role's trigger would run as us when a job writes.
    select pg_catalog.string_agg(distinct case when a.grantee operator(pg_catalog.=) 0 then 'public'
                                               else pg_catalog.quote_ident(g.rolname) end, ', ')
    into v_grantees
    from pg_catalog.pg_class c
    cross join lateral pg_catalog.aclexplode(c.relacl) a
    left join pg_catalog.pg_roles g on g.oid operator(pg_catalog.=) a.grantee
    where c.oid operator(pg_catalog.=) p_table
      and a.privilege_type operator(pg_catalog.=) 'TRIGGER'
      and a.grantee operator(pg_catalog.<>) c.relowner;
    if v_grantees is not null then
        raise exception 'roles other than the owner hold TRIGGER on %: %', v_table, v_grantees
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format('Run: revoke trigger on %s from %s; a trigger added by '
                                           'them would run with the owner''s rights whenever a '
                                           'job updates the table.', v_table, v_grantees);
    end if;
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
        v_table, p_time_column, p_state_column,
        (select pg_catalog.string_agg(pg_catalog.quote_literal(f.state), ', ')
         from pg_catalog.unnest(p_from_states) as f(state)));
    perform scheduler.create_transition_triggers(p_name);
    v_completed := scheduler.complete_due_transition(p_name, false, 'recover');
    execute pg_catalog.format(
        'select pg_catalog.array_agg(r.%1$I::pg_catalog.text), pg_catalog.array_agg(r.%2$I) '
        'from %3$s r where r.%4$I operator(pg_catalog.=) any ($1)',
        p_key_column, p_time_column, v_table, p_state_column)
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
-- unchanged since 0006: function scheduler.remove_transition(p_name pg_catalog.text)
-- unchanged since 0006: drop function scheduler.transitions()
-- unchanged since 0006: function scheduler.transitions()
-- unchanged since 0006: function scheduler.transition_jobs(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_next_time(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_health(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_report(p_name pg_catalog.text, p_dry_run boolean, p_skip_locked boolean)
-- unchanged since 0006: function scheduler.remove_stray_transition_jobs()
