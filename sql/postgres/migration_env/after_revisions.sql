-- Run by migrations/env.py after the revisions of every alembic run (PostgreSQL): nobody but its
-- owner reads or writes alembic's version table.
do $secure$
declare
    v_role pg_catalog.text;
begin
    if pg_catalog.to_regclass('scheduler.alembic_version') is null then
        return;
    end if;
    alter table scheduler.alembic_version enable row level security;
    revoke all on scheduler.alembic_version from public;
    for v_role in
        select r.rolname from pg_catalog.pg_roles r
        where r.rolname operator(pg_catalog.=) any (array['anon', 'authenticated', 'service_role'])
    loop
        execute pg_catalog.format('revoke all on scheduler.alembic_version from %I', v_role);
    end loop;
end
$secure$;
