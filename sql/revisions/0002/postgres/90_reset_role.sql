-- Back to the role that started the migration, if 05_owner.sql switched to the owner of
-- public.meetings.
do $restore_role$
declare
    v_role pg_catalog.text := pg_catalog.current_setting('scheduler.migrating_role', true);
begin
    if v_role is not null and v_role operator(pg_catalog.<>) '' then
        execute pg_catalog.format('set role %I', v_role);
    end if;
    perform pg_catalog.set_config('scheduler.migrating_role', '', false);
end
$restore_role$;
