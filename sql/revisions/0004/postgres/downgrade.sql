-- Downgrade of 0004 to 0003, after 0003's functions and triggers are applied again: drop what
-- 0004 added (completion events, webhook delivery, metrics; the path of complete_due and the
-- sweep's body). The events and attempts recorded are lost with their tables.
drop function if exists scheduler.metrics();
drop function if exists scheduler.failed_runs(pg_catalog.timestamptz);
drop function if exists scheduler.purge_events();
drop function if exists scheduler.event_counts(bigint[]);
drop function if exists scheduler.lateness_buckets();
drop function if exists scheduler.record_attempt(bigint, pg_catalog.text, integer, pg_catalog.text, double precision);
drop function if exists scheduler.claim_events(integer, double precision);
drop function if exists scheduler.set_webhooks(boolean);
drop function if exists scheduler.events(integer, pg_catalog.text);
drop function if exists scheduler.event_rows(bigint[]);
drop function if exists scheduler.record_write_completions(pg_catalog.uuid[], pg_catalog.timestamptz[]);
drop function if exists scheduler.sweep_due(pg_catalog.text);
drop function if exists scheduler.complete_due(boolean, pg_catalog.text);
drop table if exists scheduler.webhook_attempts;
drop table if exists scheduler.completion_events;
drop table if exists scheduler.metric_totals;
alter table scheduler.settings drop column if exists webhooks;
-- 0003's complete_due(boolean), dropped by 0004 and created again by 0003's 20_functions.sql, is
-- a new function: take back what PUBLIC and the API roles' default privileges gave it.
revoke all on function scheduler.complete_due(boolean) from public;
do $revoke$
declare
    v_role pg_catalog.text;
begin
    foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
        if exists (select 1 from pg_catalog.pg_roles r where r.rolname operator(pg_catalog.=) v_role) then
            execute pg_catalog.format('revoke all on function scheduler.complete_due(boolean) from %I',
                                      v_role);
        end if;
    end loop;
end
$revoke$;
