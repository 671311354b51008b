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
