-- Fault isolation and the owner's safety when it writes a table.
--
-- The owner's code (jobs, the sweep, the waker, reconcile, recover, the admin functions) updates
-- meetings and every registered transition's table as the owner, so every trigger on such a
-- table, and on each of its partitions and inheritance children, runs with the owner's rights
-- then. Partitions keep their own owners, grants and triggers: a role given TRIGGER on one
-- partition (Supabase's default privileges give it on every new table) could have its code run
-- as the owner. So:
--   * table_tree() is a table with every partition and inheritance child, at any depth;
--   * secure_table() takes TRIGGER, TRUNCATE and REFERENCES back from every role but the owner,
--     on each of them (the migration, add_transition and the reconcile job call it, so a
--     partition attached later is covered within a minute);
--   * unsafe_relations() names those the owner's code must not write: owned by another role, or
--     carrying a trigger whose function another role wrote; every path that writes as the owner
--     leaves their rows alone (they stay pending, doctor says why) until the owner fixes them.
-- And one row that cannot be completed never holds up another: complete_rows() tries the set of
-- due rows as one statement and, when it fails, splits it until each failing row is alone; such
-- rows are recorded in scheduler.failing_rows and left out until their retry time.

-- A table and every table below it (partitions and inheritance children, at any depth).
create or replace function scheduler.table_tree(p_relation pg_catalog.regclass)
returns table (relid pg_catalog.oid, depth integer)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with recursive tree(relid, depth) as (
        select p_relation::pg_catalog.oid, 0
        union all
        select i.inhrelid, t.depth operator(pg_catalog.+) 1
        from tree t
        join pg_catalog.pg_inherits i on i.inhparent operator(pg_catalog.=) t.relid
        -- a cycle cannot be made with inheritance; the bound is a guard all the same
        where t.depth operator(pg_catalog.<) 64
    )
    select t.relid, t.depth from tree t;
end
$$;
comment on function scheduler.table_tree(pg_catalog.regclass) is
    'A table and every partition and inheritance child below it, at any depth.';

-- The triggers on a table's tree whose function was written by another role than the table's
-- owner (and not by a superuser): whoever wrote it gets its code run, as the owner or with the
-- rows the owner updates, whenever the owner's code writes that table.
create or replace function scheduler.foreign_triggers(p_relation pg_catalog.regclass)
returns table (relid pg_catalog.oid, relation pg_catalog.text, trigger_name pg_catalog.text,
               function_name pg_catalog.text, function_owner pg_catalog.text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select c.oid, c.oid::pg_catalog.regclass::pg_catalog.text, g.tgname::pg_catalog.text,
           g.tgfoid::pg_catalog.regproc::pg_catalog.text,
           p.proowner::pg_catalog.regrole::pg_catalog.text
    from scheduler.table_tree(p_relation) t
    join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) t.relid
    join pg_catalog.pg_trigger g on g.tgrelid operator(pg_catalog.=) c.oid
    join pg_catalog.pg_proc p on p.oid operator(pg_catalog.=) g.tgfoid
    join pg_catalog.pg_roles r on r.oid operator(pg_catalog.=) p.proowner
    where not g.tgisinternal
      and p.proowner operator(pg_catalog.<>) (select x.relowner from pg_catalog.pg_class x
                                               where x.oid operator(pg_catalog.=) p_relation)
      and not r.rolsuper;
end
$$;
comment on function scheduler.foreign_triggers(pg_catalog.regclass) is
    'Triggers on a table, its partitions and children whose function belongs to a role that is '
    'neither the table''s owner nor a superuser.';

-- The tables of a tree that the owner's code must not write: owned by another role than the
-- top table's owner, or carrying a foreign trigger. Their oids, empty when there is none (the
-- usual case: one probe of pg_inherits and pg_trigger).
create or replace function scheduler.unsafe_relations(p_relation pg_catalog.regclass)
returns pg_catalog.oid[]
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return array(
        select t.relid
        from scheduler.table_tree(p_relation) t
        join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) t.relid
        where c.relowner operator(pg_catalog.<>) (select x.relowner from pg_catalog.pg_class x
                                                   where x.oid operator(pg_catalog.=) p_relation)
        union
        select f.relid from scheduler.foreign_triggers(p_relation) f);
end
$$;
comment on function scheduler.unsafe_relations(pg_catalog.regclass) is
    'The tables of a tree (a table, its partitions and children) the owner''s code leaves alone: '
    'owned by another role, or with a trigger another role wrote.';

-- The privileges only the owner may hold on a table the owner's code writes: TRIGGER (a trigger
-- runs as whoever writes), TRUNCATE (bypasses row-level security and unschedules nothing) and
-- REFERENCES. Who holds them on the table or any table below it, other than its owner.
create or replace function scheduler.foreign_grants(p_relation pg_catalog.regclass)
returns table (relid pg_catalog.oid, relation pg_catalog.text, grantee pg_catalog.text,
               privilege pg_catalog.text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select c.oid, c.oid::pg_catalog.regclass::pg_catalog.text,
           case when a.grantee operator(pg_catalog.=) 0 then 'PUBLIC'
                else a.grantee::pg_catalog.regrole::pg_catalog.text end,
           a.privilege_type::pg_catalog.text
    from scheduler.table_tree(p_relation) t
    join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) t.relid
    cross join lateral pg_catalog.aclexplode(c.relacl) a
    where a.privilege_type operator(pg_catalog.=) any (array['TRIGGER', 'TRUNCATE', 'REFERENCES'])
      and a.grantee operator(pg_catalog.<>) c.relowner;
end
$$;
comment on function scheduler.foreign_grants(pg_catalog.regclass) is
    'Roles other than the owner holding TRIGGER, TRUNCATE or REFERENCES on a table, its '
    'partitions or children.';

-- Takes TRIGGER, TRUNCATE and REFERENCES back from every role but the owner on a table and every
-- table below it that the caller owns (what another role owns is reported, never changed here:
-- unsafe_relations() keeps the owner's code away from it). Returns what it revoked and what it
-- could not. Grantees come from the catalog and are quoted (%I; PUBLIC as a keyword).
create or replace function scheduler.secure_table(p_relation pg_catalog.regclass)
returns pg_catalog.jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_grant pg_catalog.record;
    v_privilege pg_catalog.text;
    v_revoked pg_catalog.jsonb := '[]';
begin
    for v_grant in
        select g.relid, g.relation, g.privilege,
               case when g.grantee operator(pg_catalog.=) 'PUBLIC' then null
                    else (select r.rolname from pg_catalog.pg_roles r
                          where r.oid operator(pg_catalog.=) g.grantee::pg_catalog.regrole)
               end as rolname,
               g.grantee
        from scheduler.foreign_grants(p_relation) g
        join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) g.relid
        where pg_catalog.pg_has_role(c.relowner, 'USAGE')
    loop
        -- one of the privileges foreign_grants() reports, as a keyword of ours
        v_privilege := case v_grant.privilege when 'TRIGGER' then 'trigger'
                                              when 'TRUNCATE' then 'truncate'
                                              when 'REFERENCES' then 'references' end;
        if v_grant.rolname is null then
            execute pg_catalog.format('revoke %s on %s from public cascade',
                                      v_privilege, v_grant.relid::pg_catalog.regclass);
        else
            execute pg_catalog.format('revoke %s on %s from %I cascade',
                                      v_privilege, v_grant.relid::pg_catalog.regclass,
                                      v_grant.rolname);
        end if;
        v_revoked := v_revoked operator(pg_catalog.||) pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_object('relation', v_grant.relation,
                                          'grantee', v_grant.grantee,
                                          'privilege', v_grant.privilege));
    end loop;
    return pg_catalog.jsonb_build_object(
        'revoked', v_revoked,
        'left', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                     'relation', g.relation, 'grantee', g.grantee, 'privilege', g.privilege)), '[]')
                 from scheduler.foreign_grants(p_relation) g));
end
$$;
comment on function scheduler.secure_table(pg_catalog.regclass) is
    'Revokes TRIGGER, TRUNCATE and REFERENCES from every role but the owner on a table and every '
    'partition or child of it the caller owns; reports what it revoked and what is left.';

-- Refuses a write as the owner to one row of a table when the table that holds the row is one
-- the owner's code must leave alone (the admin functions that update one meeting).
create or replace function scheduler.require_safe_row(p_relation pg_catalog.regclass,
                                                      p_tableoid pg_catalog.oid,
                                                      p_what pg_catalog.text)
returns pg_catalog.void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_tableoid operator(pg_catalog.=) any (scheduler.unsafe_relations(p_relation)) then
        raise exception '% is in %, which another role owns or has a trigger on: the scheduler '
                        'does not write it as the owner', p_what, p_tableoid::pg_catalog.regclass
            using errcode = 'insufficient_privilege',
                  hint = 'scheduler-admin doctor names the trigger or owner; drop that trigger '
                         '(or give the table back to the owner), then retry.';
    end if;
end
$$;
comment on function scheduler.require_safe_row(pg_catalog.regclass, pg_catalog.oid, pg_catalog.text) is
    'Raises when a row lives in a table the owner''s code must not write (unsafe_relations).';

-- Serialises work on a row of scheduler.locks, held until the transaction ends. p_wait: wait
-- (up to the caller's lock_timeout); else return false at once when another transaction holds
-- it. Only the owner may lock these rows.
create or replace function scheduler.take_lock(p_name pg_catalog.text, p_wait boolean)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_wait then
        perform 1 from scheduler.locks l where l.name operator(pg_catalog.=) p_name for update;
        return true;
    end if;
    perform 1 from scheduler.locks l where l.name operator(pg_catalog.=) p_name
    for update skip locked;
    return found;
end
$$;
comment on function scheduler.take_lock(pg_catalog.text, boolean) is
    'Locks a row of scheduler.locks until the transaction ends (waiting, or not: false when held '
    'elsewhere). Locks no role but the owner can take.';

-- Records a row whose completion failed, and when to try it again: 10 s after the first failure,
-- doubling with each attempt, at most an hour.
create or replace function scheduler.note_failing_row(p_transition pg_catalog.text,
                                                      p_key pg_catalog.text,
                                                      p_error pg_catalog.text,
                                                      p_sqlstate pg_catalog.text)
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into scheduler.failing_rows as f
        (transition, row_key, error, sqlstate, attempts, retry_at)
    values (p_transition, p_key, p_error, p_sqlstate, 1,
            pg_catalog.now() operator(pg_catalog.+) interval '00:00:10')
    on conflict (transition, row_key) do update
    set error = excluded.error, sqlstate = excluded.sqlstate,
        attempts = f.attempts operator(pg_catalog.+) 1,
        last_failed_at = pg_catalog.now(),
        retry_at = pg_catalog.now() operator(pg_catalog.+) least(
            interval '00:00:10' operator(pg_catalog.*)
                pg_catalog.power(2, least(f.attempts, 20))::double precision,
            interval '1 hour');
    raise warning 'scheduler: % row % could not be completed: % (retried later)',
                  p_transition, p_key, p_error;
end
$$;
comment on function scheduler.note_failing_row(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text) is
    'Records a row whose completion failed (error, attempts) with its next try: 10 s, doubling, '
    'at most an hour.';

-- One statement that completes the due rows of a transition (all of them, or those among
-- p_keys), records their completion events, and clears their failing_rows entries. Rows of the
-- tables in p_unsafe and rows failing until a later retry time are left out. p_limit bounds the
-- rows (null: no bound). Identifiers come from the registry through %I, the table from the
-- catalog; values are parameters.
create or replace function scheduler.complete_set(p_name pg_catalog.text, p_keys pg_catalog.text[],
                                                  p_skip_locked boolean, p_path pg_catalog.text,
                                                  p_limit integer, p_unsafe pg_catalog.oid[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_from pg_catalog.text[];
    v_to pg_catalog.text;
    v_failing boolean;
    v_count integer;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    if v_t.builtin then
        -- the meetings' words live in scheduler.settings (configure_statuses)
        v_from := array[scheduler.pending_status()];
        v_to := scheduler.done_status();
    else
        v_from := v_t.from_states;
        v_to := v_t.to_state;
    end if;
    v_failing := exists (select 1 from scheduler.failing_rows f
                         where f.transition operator(pg_catalog.=) p_name);
    execute pg_catalog.format(
        'with due as ('
        '    select r.%I as key from %s r'
        '    where r.%I operator(pg_catalog.=) %s'
        '      and r.%I operator(pg_catalog.<=) pg_catalog.now() %s %s %s'
        '    %s for update %s'
        '), done as ('
        '    update %s r set %I = $2%s from due where r.%I operator(pg_catalog.=) due.key'
        '    returning r.%I as key, r.%I as time'
        '), t as materialized ('
        '    select pg_catalog.clock_timestamp() as at,'
        '           (select s.webhooks from scheduler.settings s) as webhooks'
        ')%s '
        'insert into scheduler.completion_events'
        '    (transition, meeting_id, row_key, end_time, completed_at, path, delivery,'
        '     next_attempt_at) '
        'select $3, %s, d.time, t.at, $4, case when t.webhooks then ''pending'' end, t.at '
        'from t cross join done d',
        v_t.key_column, v_table, v_t.state_column,
        -- meetings: one word, so that the planner matches the partial index on end_time
        case when v_t.builtin then '$1[1]' else 'any ($1)' end,
        v_t.time_column,
        case when p_keys is not null
             then pg_catalog.format('and r.%I::pg_catalog.text operator(pg_catalog.=) any ($5)',
                                    v_t.key_column) else '' end,
        case when pg_catalog.cardinality(p_unsafe) operator(pg_catalog.>) 0
             then 'and r.tableoid operator(pg_catalog.<>) all ($6)' else '' end,
        case when v_failing
             then pg_catalog.format(
                 'and not exists (select 1 from scheduler.failing_rows f '
                 'where f.transition operator(pg_catalog.=) $3 '
                 'and f.row_key operator(pg_catalog.=) r.%I::pg_catalog.text '
                 'and f.retry_at operator(pg_catalog.>) pg_catalog.now())', v_t.key_column)
             else '' end,
        case when p_limit is not null then pg_catalog.format('limit %s', p_limit) else '' end,
        case when p_skip_locked then 'skip locked' else '' end,
        v_table, v_t.state_column,
        -- completing a meeting sets updated_at where the table has it (applications sync on it)
        case when v_t.builtin and exists (
                 select 1 from pg_catalog.pg_attribute a
                 where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
                   and a.attname operator(pg_catalog.=) 'updated_at'
                   and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped)
             then ', updated_at = pg_catalog.now()' else '' end,
        v_t.key_column, v_t.key_column, v_t.time_column,
        case when v_failing
             then ', cleared as (delete from scheduler.failing_rows f using done d '
                  'where f.transition operator(pg_catalog.=) $3 '
                  'and f.row_key operator(pg_catalog.=) d.key::pg_catalog.text)'
             else '' end,
        -- a meeting's event names its meeting, another transition's row its key as text
        case when v_t.builtin then 'd.key, null'
             else 'null, d.key::pg_catalog.text' end)
    using v_from, v_to, p_name, p_path, p_keys, p_unsafe;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function scheduler.complete_set(pg_catalog.text, pg_catalog.text[], boolean, pg_catalog.text, integer, pg_catalog.oid[]) is
    'One statement: gives the to-state to the due rows of a transition (or those among the keys '
    'given), records their events and clears their failing entries; leaves out the tables given '
    'and rows failing until a later retry. Internal: see complete_rows().';

-- Completes the due rows of a transition (meetings included), each row in isolation from the
-- others: one statement for the whole set first (the usual case, at no extra cost); when it
-- fails, the due keys are split in halves, and halves again, each try in a subtransaction, until
-- every row that fails is alone, and that row is recorded in scheduler.failing_rows (left out
-- until its retry time). A lock or statement timeout is not a row's fault: it fails the call
-- (later runs retry). At most 64 failed tries per call: a statement that fails for
-- every row costs bounded work, and the next call goes on (the rows recorded are left out).
-- Rows in tables the owner's code must not write (unsafe_relations) are left alone, with a
-- warning; when the table itself is such, nothing is completed.
create or replace function scheduler.complete_rows(p_name pg_catalog.text, p_skip_locked boolean,
                                                   p_path pg_catalog.text, p_limit integer)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_unsafe pg_catalog.oid[];
    v_from pg_catalog.text[];
    v_keys pg_catalog.text[];
    v_lo integer[];
    v_hi integer[];
    v_a integer;
    v_b integer;
    v_mid integer;
    v_done integer := 0;
    v_failures integer := 0;
    v_message pg_catalog.text;
    v_state pg_catalog.text;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    v_unsafe := scheduler.unsafe_relations(v_table);
    if pg_catalog.cardinality(v_unsafe) operator(pg_catalog.>) 0 then
        raise warning 'scheduler: % leaves alone the rows of % (another role owns it or has a '
                      'trigger on it; scheduler-admin doctor says which)',
                      p_name, (select pg_catalog.string_agg(u.relid::pg_catalog.regclass::pg_catalog.text, ', ')
                               from pg_catalog.unnest(v_unsafe) as u(relid));
        if v_table::pg_catalog.oid operator(pg_catalog.=) any (v_unsafe) then
            return 0;
        end if;
    end if;
    begin
        return scheduler.complete_set(p_name, null, p_skip_locked, p_path, p_limit, v_unsafe);
    exception
        when lock_not_available or query_canceled then
            raise;
        when others then
            null;  -- a row of the set failed: find it below
    end;
    v_from := case when v_t.builtin then array[scheduler.pending_status()] else v_t.from_states end;
    execute pg_catalog.format(
        'select pg_catalog.array_agg(k.key) from ('
        '    select r.%I::pg_catalog.text as key from %s r'
        '    where r.%I operator(pg_catalog.=) any ($1)'
        '      and r.%I operator(pg_catalog.<=) pg_catalog.now()'
        '      and r.tableoid operator(pg_catalog.<>) all ($2)'
        '      and not exists (select 1 from scheduler.failing_rows f'
        '                      where f.transition operator(pg_catalog.=) $3'
        '                        and f.row_key operator(pg_catalog.=) r.%I::pg_catalog.text'
        '                        and f.retry_at operator(pg_catalog.>) pg_catalog.now())'
        '    order by r.%I %s) k',
        v_t.key_column, v_table, v_t.state_column, v_t.time_column, v_t.key_column,
        v_t.time_column,
        case when p_limit is not null then pg_catalog.format('limit %s', p_limit) else '' end)
    into v_keys using v_from, v_unsafe, p_name;
    if v_keys is null then
        return 0;
    end if;
    v_lo := array[1];
    v_hi := array[pg_catalog.cardinality(v_keys)];
    while pg_catalog.cardinality(v_lo) operator(pg_catalog.>) 0 loop
        v_a := v_lo[pg_catalog.cardinality(v_lo)];
        v_b := v_hi[pg_catalog.cardinality(v_hi)];
        v_lo := v_lo[1:pg_catalog.cardinality(v_lo) operator(pg_catalog.-) 1];
        v_hi := v_hi[1:pg_catalog.cardinality(v_hi) operator(pg_catalog.-) 1];
        begin
            v_done := v_done operator(pg_catalog.+)
                      scheduler.complete_set(p_name, v_keys[v_a:v_b], p_skip_locked, p_path, null,
                                             v_unsafe);
        exception
            when lock_not_available or query_canceled then
                raise;
            when others then
                get stacked diagnostics v_message = message_text, v_state = returned_sqlstate;
                v_failures := v_failures operator(pg_catalog.+) 1;
                if v_a operator(pg_catalog.=) v_b then
                    perform scheduler.note_failing_row(p_name, v_keys[v_a], v_message, v_state);
                elsif v_failures operator(pg_catalog.<) 64 then
                    v_mid := (v_a operator(pg_catalog.+) v_b) operator(pg_catalog./) 2;
                    v_lo := v_lo operator(pg_catalog.||) array[v_mid operator(pg_catalog.+) 1, v_a];
                    v_hi := v_hi operator(pg_catalog.||) array[v_b, v_mid];
                end if;
        end;
        exit when v_failures operator(pg_catalog.>=) 64;
    end loop;
    return v_done;
end
$$;
comment on function scheduler.complete_rows(pg_catalog.text, boolean, pg_catalog.text, integer) is
    'Gives the to-state to the due rows of a transition, one failing row never holding up the '
    'others: the set in one statement, split in halves when it fails until each failing row is '
    'alone and recorded in scheduler.failing_rows; rows of tables another role owns or has a '
    'trigger on are left alone.';

-- Entries of failing_rows whose row is gone or no longer pending: removed (the reconcile job).
create or replace function scheduler.clear_failing_rows(p_name pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_count integer;
begin
    if not exists (select 1 from scheduler.failing_rows f
                   where f.transition operator(pg_catalog.=) p_name) then
        return 0;
    end if;
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    execute pg_catalog.format(
        'delete from scheduler.failing_rows f where f.transition operator(pg_catalog.=) $1 '
        'and not exists (select 1 from %s r '
        '                where r.%I::pg_catalog.text operator(pg_catalog.=) f.row_key '
        '                  and r.%I operator(pg_catalog.=) any ($2))',
        v_table, v_t.key_column, v_t.state_column)
    using p_name, case when v_t.builtin then array[scheduler.pending_status()]
                       else v_t.from_states end;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function scheduler.clear_failing_rows(pg_catalog.text) is
    'Removes the failing_rows entries of a transition whose row is gone or no longer pending.';

-- The rows failing to complete, most recent first (doctor, health, metrics).
create or replace function scheduler.failing_rows_report(p_transition pg_catalog.text, p_limit integer)
returns pg_catalog.jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'transition', f.transition, 'key', f.row_key, 'error', f.error,
                       'sqlstate', f.sqlstate, 'attempts', f.attempts,
                       'first_failed_at', f.first_failed_at, 'last_failed_at', f.last_failed_at,
                       'retry_at', f.retry_at) order by f.last_failed_at desc), '[]')
            from (select * from scheduler.failing_rows x
                  where p_transition is null or x.transition operator(pg_catalog.=) p_transition
                  order by x.last_failed_at desc limit p_limit) f);
end
$$;
comment on function scheduler.failing_rows_report(pg_catalog.text, integer) is
    'The rows failing to complete (of every transition or one), most recent first.';

-- What doctor says about the tables the owner's code writes (meetings and every registered
-- transition's table, with their partitions and children): tables another role owns, triggers
-- another role wrote, TRIGGER/TRUNCATE/REFERENCES held by another role, and tables below the top
-- one that the API roles (anon, authenticated) or PUBLIC may read with row-level security off
-- (reading a partition directly skips the policies of its parent).
create or replace function scheduler.table_safety()
returns pg_catalog.jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_relation pg_catalog.regclass;
    v_result pg_catalog.jsonb := '[]';
begin
    for v_relation in
        select distinct t.relation from scheduler.transitions t
        where exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation)
    loop
        v_result := v_result operator(pg_catalog.||) pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_object(
                'table', v_relation::pg_catalog.text,
                'tables', (select pg_catalog.count(*) from scheduler.table_tree(v_relation)),
                'not_owned', (
                    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'relation', c.oid::pg_catalog.regclass::pg_catalog.text,
                               'owner', c.relowner::pg_catalog.regrole::pg_catalog.text)), '[]')
                    from scheduler.table_tree(v_relation) t
                    join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) t.relid
                    where c.relowner operator(pg_catalog.<>)
                          (select x.relowner from pg_catalog.pg_class x
                           where x.oid operator(pg_catalog.=) v_relation)),
                'foreign_triggers', (
                    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'relation', f.relation, 'trigger', f.trigger_name,
                               'function', f.function_name, 'function_owner', f.function_owner)), '[]')
                    from scheduler.foreign_triggers(v_relation) f),
                'foreign_grants', (
                    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'relation', g.relation, 'grantee', g.grantee,
                               'privilege', g.privilege)), '[]')
                    from scheduler.foreign_grants(v_relation) g),
                'readable_without_rls', (
                    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'relation', c.oid::pg_catalog.regclass::pg_catalog.text,
                               'grantee', r.name)), '[]')
                    from scheduler.table_tree(v_relation) t
                    join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) t.relid
                    cross join (select 'PUBLIC'::pg_catalog.text as name, 0::pg_catalog.oid as oid
                                union all
                                select x.rolname::pg_catalog.text, x.oid from pg_catalog.pg_roles x
                                where x.rolname operator(pg_catalog.=) any (array['anon', 'authenticated'])) r
                    where t.depth operator(pg_catalog.>) 0
                      and not c.relrowsecurity
                      and exists (select 1 from pg_catalog.aclexplode(c.relacl) a
                                  where a.grantee operator(pg_catalog.=) r.oid
                                    and a.privilege_type operator(pg_catalog.=) 'SELECT'))
            ));
    end loop;
    return v_result;
end
$$;
comment on function scheduler.table_safety() is
    'For meetings and each registered table (with partitions and children): tables another role '
    'owns, triggers another role wrote, TRIGGER/TRUNCATE/REFERENCES held by another role, '
    'partitions the API roles may read with row-level security off.';

-- The reconcile job's failed runs in a row, newest first, from pg_cron's run history (a run that
-- fails rolls back everything it wrote, so the count cannot be kept in a table of ours).
create or replace function scheduler.reconcile_failed_in_a_row()
returns integer
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_count integer := 0;
    v_status pg_catalog.text;
begin
    for v_status in
        select d.status from cron.job_run_details d
        join cron.job j on j.jobid operator(pg_catalog.=) d.jobid
        where j.jobname operator(pg_catalog.=) 'meeting-status-reconcile'
          and j.username operator(pg_catalog.=) current_user
          and d.status operator(pg_catalog.<>) all (array['starting', 'running', 'sending', 'connecting'])
        order by d.runid desc
        limit 100
    loop
        exit when v_status operator(pg_catalog.<>) 'failed';
        v_count := v_count operator(pg_catalog.+) 1;
    end loop;
    return v_count;
end
$$;
comment on function scheduler.reconcile_failed_in_a_row() is
    'How many of the reconcile job''s latest finished runs failed in a row (pg_cron''s history).';
