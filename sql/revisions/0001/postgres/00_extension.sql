-- pg_cron must be installed, preloaded and configured for this database before anything of ours
-- can work. Check each condition and name the setting to change, then create the extension.
do $preflight$
declare
    v_cron_db text;
begin
    if exists (select 1 from pg_catalog.pg_extension where extname operator(pg_catalog.=) 'pg_cron') then
        return;
    end if;
    if not exists (select 1 from pg_catalog.pg_available_extensions
                   where name operator(pg_catalog.=) 'pg_cron') then
        raise exception 'pg_cron is not installed on this PostgreSQL server'
            using errcode = 'feature_not_supported',
                  hint = 'Install the pg_cron package for this server version (on Debian: '
                         'apt-get install postgresql-<version>-cron; on Supabase pg_cron is built in), '
                         'then set shared_preload_libraries = ''pg_cron'' and restart.';
    end if;
    -- pg_cron defines cron.database_name when it is loaded at server start. Only superusers
    -- (and pg_read_all_settings) may read it: for others, let create extension say what is wrong.
    begin
        v_cron_db := pg_catalog.current_setting('cron.database_name', true);
    exception when insufficient_privilege then
        return;
    end;
    if v_cron_db is null then
        raise exception 'pg_cron is not preloaded: shared_preload_libraries must include pg_cron'
            using errcode = 'object_not_in_prerequisite_state',
                  hint = pg_catalog.format(
                      'In postgresql.conf set shared_preload_libraries = ''pg_cron'' (keep any '
                      'libraries already listed) and cron.database_name = %L, then restart PostgreSQL.',
                      pg_catalog.current_database());
    end if;
    if v_cron_db operator(pg_catalog.<>) pg_catalog.current_database() then
        raise exception 'pg_cron runs jobs only in database "%" (cron.database_name), not in "%"',
                        v_cron_db, pg_catalog.current_database()
            using errcode = 'object_not_in_prerequisite_state',
                  hint = pg_catalog.format(
                      'Set cron.database_name = %L in postgresql.conf and restart PostgreSQL, '
                      'or migrate database %I instead.', pg_catalog.current_database(), v_cron_db);
    end if;
end
$preflight$;

create extension if not exists pg_cron;
