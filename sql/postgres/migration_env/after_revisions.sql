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

-- The words of meetings.status to act on, when this run was given them (migrations/env.py sets
-- scheduler.pending_status, scheduler.done_status and scheduler.cancelled_status for its
-- transaction from -x pending_status=... or SCHEDULER_PENDING_STATUS, ...): checked against the
-- table and stored by scheduler.configure_statuses(), which reports the statuses left alone.
do $statuses$
begin
    if pg_catalog.to_regprocedure('scheduler.configure_statuses(pg_catalog.text, pg_catalog.text, pg_catalog.text)') is null
       or pg_catalog.concat(pg_catalog.current_setting('scheduler.pending_status', true),
                            pg_catalog.current_setting('scheduler.done_status', true),
                            pg_catalog.current_setting('scheduler.cancelled_status', true))
          operator(pg_catalog.=) '' then
        return;
    end if;
    perform scheduler.configure_statuses(
        nullif(pg_catalog.current_setting('scheduler.pending_status', true), ''),
        nullif(pg_catalog.current_setting('scheduler.done_status', true), ''),
        nullif(pg_catalog.current_setting('scheduler.cancelled_status', true), ''));
end
$statuses$;
