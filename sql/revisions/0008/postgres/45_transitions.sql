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
-- unchanged since 0007: function scheduler.transition_before_write()

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
-- unchanged since 0005: function scheduler.create_transition_triggers(p_name pg_catalog.text)
-- unchanged since 0005: function scheduler.drop_transition_triggers(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_triggers(p_name pg_catalog.text, p_enabled_only boolean)

-- Marks to_state every pending row of a transition whose time has passed (skipping or waiting
-- for locked rows, as complete_due does for meetings), and records one completion event per row
-- with the path that completed it (0007; completed_at is the clock when the statement ran, read
-- once). The update trigger removes their jobs. The 0006 form without a path is dropped.
drop function if exists scheduler.complete_due_transition(pg_catalog.text, boolean);
-- unchanged since 0007: function scheduler.complete_due_transition(p_name pg_catalog.text, p_skip_locked boolean, p_path pg_catalog.text)
-- unchanged since 0007: function scheduler.complete_transition(p_name pg_catalog.text, p_key pg_catalog.text)

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
-- unchanged since 0007: function scheduler.sweep_transitions(p_path pg_catalog.text)
-- unchanged since 0007: function scheduler.add_transition(p_name pg_catalog.text, p_table pg_catalog.regclass, p_key_column pg_catalog.text, p_time_column pg_catalog.text, p_state_column pg_catalog.text, p_from_states pg_catalog.text[], p_to_state pg_catalog.text, p_job_prefix pg_catalog.text default null)
-- unchanged since 0006: function scheduler.remove_transition(p_name pg_catalog.text)
-- unchanged since 0006: drop function scheduler.transitions()
-- unchanged since 0006: function scheduler.transitions()
-- unchanged since 0006: function scheduler.transition_jobs(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_next_time(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_health(p_name pg_catalog.text)
-- unchanged since 0006: function scheduler.transition_report(p_name pg_catalog.text, p_dry_run boolean, p_skip_locked boolean)
-- unchanged since 0006: function scheduler.remove_stray_transition_jobs()
