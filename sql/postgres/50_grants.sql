-- Least privilege. Nothing of ours is executable by PUBLIC: the trigger functions run as their
-- owner (the owner of public.meetings, see 05_owner.sql) when the triggers fire, whoever writes
-- meetings, and the jobs run as that same role.
revoke all on all functions in schema scheduler from public;

-- On Supabase the admin functions are called through RPC as service_role (never anon or
-- authenticated). Elsewhere, grant them to your admin role the same way.
do $grants$
declare
    v_role pg_catalog.text;
    v_table pg_catalog.text;
begin
    -- Our tables (alembic's version table belongs to whoever migrates and is secured by the
    -- migration environment).
    for v_table in
        select c.oid::pg_catalog.regclass::pg_catalog.text from pg_catalog.pg_class c
        where c.relnamespace operator(pg_catalog.=) 'scheduler'::pg_catalog.regnamespace
          and c.relkind operator(pg_catalog.=) 'r'
          and c.relname operator(pg_catalog.<>) 'alembic_version'
    loop
        execute pg_catalog.format('revoke all on %s from public', v_table);
        foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
            if exists (select 1 from pg_catalog.pg_roles r where r.rolname operator(pg_catalog.=) v_role) then
                execute pg_catalog.format('revoke all on %s from %I', v_table, v_role);
            end if;
        end loop;
    end loop;
    -- Default privileges may have granted these API roles more than PUBLIC has: take it back.
    foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
        if exists (select 1 from pg_catalog.pg_roles where rolname operator(pg_catalog.=) v_role) then
            execute pg_catalog.format('revoke all on schema scheduler from %I', v_role);
            execute pg_catalog.format('revoke all on all functions in schema scheduler from %I', v_role);
        end if;
    end loop;
    if exists (select 1 from pg_catalog.pg_roles where rolname operator(pg_catalog.=) 'service_role') then
        grant usage on schema scheduler to service_role;
        grant execute on function
            -- with the transition's name
            scheduler.list_jobs(pg_catalog.text), scheduler.recover(boolean, pg_catalog.text),
            scheduler.history(boolean, integer, pg_catalog.text),
            scheduler.health(),
            scheduler.schedule_meeting(pg_catalog.uuid, pg_catalog.timestamptz),
            scheduler.cancel_meeting(pg_catalog.uuid),
            -- the application's waker over REST (scheduler_admin/waker.py)
            scheduler.wake(pg_catalog.text), scheduler.next_end_time(),
            -- the election of one active waker among the application's instances (0012)
            scheduler.claim_waker(pg_catalog.text, double precision, pg_catalog.text),
            scheduler.release_waker(pg_catalog.text, pg_catalog.text),
            -- completion events, the webhook dispatcher and the metrics
            scheduler.events(integer, pg_catalog.text, pg_catalog.text),
            scheduler.set_webhooks(boolean),
            scheduler.claim_events(integer, double precision),
            scheduler.record_attempt(bigint, pg_catalog.text, integer, pg_catalog.text,
                                     double precision),
            scheduler.metrics(pg_catalog.text),
            -- the registered transitions, doctor's facts about one
            scheduler.transitions(), scheduler.transition_health(pg_catalog.text),
            -- the job horizon (0011)
            scheduler.horizons(), scheduler.deferred_jobs(pg_catalog.text),
            scheduler.set_job_horizon(pg_catalog.interval, pg_catalog.text)
        to service_role;
    end if;
end
$grants$;

-- The jobs update meetings as its owner, so every trigger on meetings runs with the owner's
-- rights when a job completes a meeting. Only the owner may add triggers, truncate (which
-- bypasses row-level security and unschedules nothing) or reference it: take TRIGGER, TRUNCATE
-- and REFERENCES back from every other role, on meetings and on every partition or child of it
-- (Supabase's default privileges give them to anon, authenticated and service_role on every new
-- table, partitions included). The reconcile job does the same every minute for partitions
-- attached later; scheduler-admin doctor reports them if they come back.
do $trigger_privilege$
declare
    v_left pg_catalog.jsonb;
begin
    v_left := scheduler.secure_table('public.meetings') operator(pg_catalog.->) 'left';
    if pg_catalog.jsonb_array_length(v_left) operator(pg_catalog.>) 0 then
        raise exception 'roles other than the owner still hold TRIGGER, TRUNCATE or REFERENCES on public.meetings or a partition of it: %',
                        v_left
            using errcode = 'insufficient_privilege',
                  hint = 'Migrate as the owner of public.meetings (and of each partition) or as a '
                         'superuser, so that the grants can be revoked; a trigger added by another '
                         'role would run with the owner''s rights whenever a job completes a meeting.';
    end if;
end
$trigger_privilege$;
