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
