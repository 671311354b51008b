-- Who the scheduler runs as. Every function and every pg_cron job of ours belongs to the owner of
-- public.meetings: the triggers and the admin functions run as that role and the jobs log in as
-- it, so nobody who may write meetings, or even owns them, runs code with more rights than the
-- owner already has. A superuser migrating a table that belongs to another role only creates the
-- extension (00_extension.sql), gives that owner schema scheduler and the cron rights; every
-- later file runs as the owner (SET ROLE, undone by 90_reset_role.sql), so that nothing the owner
-- controls (a trigger on scheduler.settings, say) ever runs as the superuser. When the table does
-- not exist yet, the migrating role creates it (10_schema.sql) and owns it.
do $owner$
declare
    v_owner pg_catalog.name;
    v_owner_super boolean;
    v_me pg_catalog.name := current_user;
    v_object pg_catalog.text;
    v_jobs bigint[];
begin
    select r.rolname, r.rolsuper into v_owner, v_owner_super
    from pg_catalog.pg_class c join pg_catalog.pg_roles r on r.oid operator(pg_catalog.=) c.relowner
    where c.oid operator(pg_catalog.=) pg_catalog.to_regclass('public.meetings');
    -- the role to return to at the end of the migration (empty: no switch)
    perform pg_catalog.set_config('scheduler.migrating_role', '', false);
    if v_owner is null or v_owner operator(pg_catalog.=) v_me then
        return;
    end if;
    if not pg_catalog.pg_has_role(v_me, v_owner, 'MEMBER') then
        raise exception 'public.meetings belongs to role %, and % may not act as it', v_owner, v_me
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format(
                      'Migrate as %I (or as a superuser): the scheduler''s functions and jobs must '
                      'belong to the owner of public.meetings.', v_owner);
    end if;
    -- pg_cron's functions are executable by PUBLIC unless revoked; its schema is not.
    if not v_owner_super
       and not pg_catalog.has_schema_privilege(v_owner, 'cron', 'USAGE') then
        if not (select r.rolsuper from pg_catalog.pg_roles r where r.rolname operator(pg_catalog.=) v_me) then
            raise exception 'role % (owner of public.meetings) may not use schema cron', v_owner
                using errcode = 'insufficient_privilege',
                      hint = pg_catalog.format('As a superuser run: grant usage on schema cron to %I;',
                                               v_owner);
        end if;
        execute pg_catalog.format('grant usage on schema cron to %I', v_owner);
    end if;
    if not pg_catalog.has_function_privilege(v_owner, 'cron.schedule(pg_catalog.text, pg_catalog.text, pg_catalog.text)', 'EXECUTE') then
        raise exception 'role % (owner of public.meetings) may not execute cron.schedule', v_owner
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format('As a superuser run: grant execute on function '
                                           'cron.schedule(text, text, text) to %I;', v_owner);
    end if;

    -- Schema scheduler, and objects of ours created by an earlier migration as another role, now
    -- belong to the owner.
    if pg_catalog.to_regnamespace('scheduler') is null then
        execute pg_catalog.format('create schema scheduler authorization %I', v_owner);
    else
        execute pg_catalog.format('alter schema scheduler owner to %I', v_owner);
        for v_object in
            select c.oid::pg_catalog.regclass::pg_catalog.text from pg_catalog.pg_class c
            where c.relnamespace operator(pg_catalog.=) 'scheduler'::pg_catalog.regnamespace
              and c.relkind operator(pg_catalog.=) any (array['r', 'v', 'm', 'p']::pg_catalog."char"[])
              and c.relname operator(pg_catalog.<>) 'alembic_version'
              and c.relowner operator(pg_catalog.<>) (select r.oid from pg_catalog.pg_roles r
                                                       where r.rolname operator(pg_catalog.=) v_owner)
        loop
            execute pg_catalog.format('alter table %s owner to %I', v_object, v_owner);
        end loop;
        for v_object in
            select p.oid::pg_catalog.regprocedure::pg_catalog.text from pg_catalog.pg_proc p
            where p.pronamespace operator(pg_catalog.=) 'scheduler'::pg_catalog.regnamespace
              and p.proowner operator(pg_catalog.<>) (select r.oid from pg_catalog.pg_roles r
                                                       where r.rolname operator(pg_catalog.=) v_owner)
        loop
            execute pg_catalog.format('alter function %s owner to %I', v_object, v_owner);
        end loop;
    end if;
    -- Jobs of ours that run as another role are removed (as one statement where we may: one
    -- cron.unschedule per job overflows the invalidation queue at tens of thousands);
    -- 60_jobs.sql registers them again as the owner.
    select pg_catalog.array_agg(j.jobid) into v_jobs from cron.job j
    where (j.jobname operator(pg_catalog.=) 'meeting-status-reconcile'
           or j.jobname operator(pg_catalog.~) '^meeting-status-[0-9a-f-]{36}$')
      and j.username operator(pg_catalog.<>) v_owner;
    if pg_catalog.has_table_privilege('cron.job', 'DELETE') then
        delete from cron.job j where j.jobid operator(pg_catalog.=) any (v_jobs);
    else
        perform cron.unschedule(u.jobid) from pg_catalog.unnest(v_jobs) as u(jobid);
    end if;

    perform pg_catalog.set_config('scheduler.migrating_role', v_me, false);
    execute pg_catalog.format('set role %I', v_owner);
end
$owner$;
