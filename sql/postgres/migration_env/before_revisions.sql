-- Run by migrations/env.py before the revisions of every alembic run (PostgreSQL). Not a schema
-- file: it prepares alembic's version table, which lives in schema scheduler (out of public,
-- which Supabase's Data API exposes).

-- Whether public.meetings exists when the run starts: a table a revision creates in this run
-- gets row-level security (10_schema.sql).
select pg_catalog.set_config('scheduler.meetings_missing',
                             (pg_catalog.to_regclass('public.meetings') is null)::pg_catalog.text,
                             true);

create schema if not exists scheduler;

-- Earlier releases kept the version table in public.
do $move$
begin
    if pg_catalog.to_regclass('public.alembic_version') is not null
       and pg_catalog.to_regclass('scheduler.alembic_version') is null then
        alter table public.alembic_version set schema scheduler;
    end if;
end
$move$;

-- alembic writes the version table with the migrating role's rights: a table there that another
-- role made (the owner of schema scheduler may drop and re-create it) could carry a trigger that
-- runs as the migrating role, a superuser perhaps.
do $check$
declare
    v_owner pg_catalog.name;
    v_owner_super boolean;
begin
    select r.rolname, r.rolsuper into v_owner, v_owner_super
    from pg_catalog.pg_class c join pg_catalog.pg_roles r on r.oid operator(pg_catalog.=) c.relowner
    where c.oid operator(pg_catalog.=) pg_catalog.to_regclass('scheduler.alembic_version');
    if v_owner is not null and v_owner operator(pg_catalog.<>) current_user
       and not v_owner_super then
        raise exception 'scheduler.alembic_version belongs to role %, not to the migrating role %',
                        v_owner, current_user
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format(
                      'alembic would write it with the rights of %I. Check its contents '
                      '(select * from scheduler.alembic_version), drop it, create it again as %I '
                      'with the same version, and migrate again.', current_user, current_user);
    end if;
end
$check$;

-- The scheduler's jobs (the sweep runs every second on pg_cron 1.5 and later) read and write our
-- tables while a revision replaces triggers and drops tables: a job holding one of them while
-- waiting for another that the revision holds ends in a deadlock, and the migration fails. So the
-- run first takes every table a job may touch, in one statement: schema scheduler's tables, the
-- tables carrying a trigger of ours (meetings, the registered transitions' tables) and their
-- partitions and inheritance children, each the migrating role may lock. A job arriving later
-- waits (its lock_timeout fails the run; the next run or the reconcile job catches up); a
-- deadlock with a job already running fails one side: a job is retried by its next run, this
-- statement by this loop. Table names come from the catalog, quoted by regclass.
do $lock$
declare
    v_tables pg_catalog.text;
    v_tries integer := 0;
begin
    with recursive ours as (
        select c.oid
        from pg_catalog.pg_class c
        where c.relnamespace operator(pg_catalog.=) pg_catalog.to_regnamespace('scheduler')
          and c.relkind operator(pg_catalog.=) any (array['r', 'p']::pg_catalog."char"[])
          and c.relname operator(pg_catalog.<>) 'alembic_version'
        union
        select t.tgrelid
        from pg_catalog.pg_trigger t
        join pg_catalog.pg_proc p on p.oid operator(pg_catalog.=) t.tgfoid
        where p.pronamespace operator(pg_catalog.=) pg_catalog.to_regnamespace('scheduler')
        union
        select i.inhrelid
        from pg_catalog.pg_inherits i join ours o on i.inhparent operator(pg_catalog.=) o.oid
    )
    select pg_catalog.string_agg('only ' operator(pg_catalog.||) o.oid::pg_catalog.regclass::pg_catalog.text,
                                 ', ' order by o.oid)
    into v_tables
    from ours o
    join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) o.oid
    where c.relkind operator(pg_catalog.=) any (array['r', 'p']::pg_catalog."char"[])
      and (pg_catalog.has_table_privilege(o.oid, 'UPDATE')
           or pg_catalog.has_table_privilege(o.oid, 'DELETE')
           or pg_catalog.has_table_privilege(o.oid, 'TRUNCATE'));
    if v_tables is null then
        return;
    end if;
    loop
        begin
            execute 'lock table ' operator(pg_catalog.||) v_tables
                    operator(pg_catalog.||) ' in access exclusive mode';
            return;
        exception when deadlock_detected then
            v_tries := v_tries operator(pg_catalog.+) 1;
            if v_tries operator(pg_catalog.>=) 20 then
                raise;
            end if;
        end;
    end loop;
end
$lock$;
