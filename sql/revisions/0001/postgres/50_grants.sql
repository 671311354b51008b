-- Least privilege. Nothing of ours is executable by PUBLIC: the trigger functions run as their
-- owner (the migrating role) when the triggers fire, whoever writes meetings, and the job
-- functions run as the jobs' owner, which is the same role.
revoke all on all functions in schema scheduler from public;
revoke all on all tables in schema scheduler from public;

-- On Supabase the admin functions are called through RPC as service_role (never anon or
-- authenticated). Elsewhere, grant them to your admin role the same way.
do $grants$
declare
    v_role text;
begin
    -- Default privileges may have granted these API roles more than PUBLIC has: take it back.
    foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
        if exists (select 1 from pg_catalog.pg_roles where rolname operator(pg_catalog.=) v_role) then
            execute pg_catalog.format('revoke all on schema scheduler from %I', v_role);
            execute pg_catalog.format('revoke all on all functions in schema scheduler from %I', v_role);
            execute pg_catalog.format('revoke all on all tables in schema scheduler from %I', v_role);
        end if;
    end loop;
    if exists (select 1 from pg_catalog.pg_roles where rolname operator(pg_catalog.=) 'service_role') then
        grant usage on schema scheduler to service_role;
        grant execute on function
            scheduler.list_jobs(), scheduler.recover(boolean), scheduler.history(boolean, integer),
            scheduler.health(), scheduler.schedule_meeting(uuid, timestamptz),
            scheduler.cancel_meeting(uuid)
        to service_role;
    end if;
end
$grants$;
