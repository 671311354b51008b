-- Downgrade of 0007 to 0006, first part: the functions whose arguments or columns 0007 changed
-- (0006's own are applied next), then the events and totals of transitions other than meetings,
-- which 0006 cannot hold (a completion event names a meeting there), and the columns 0007 added.
drop function if exists scheduler.events(integer, pg_catalog.text, pg_catalog.text);
drop function if exists scheduler.claim_events(integer, double precision);
drop function if exists scheduler.event_rows(bigint[]);
drop function if exists scheduler.event_counts(bigint[]);
drop function if exists scheduler.metrics(pg_catalog.text);
drop function if exists scheduler.sweep(pg_catalog.text);
delete from scheduler.completion_events e where e.meeting_id is null;
alter table scheduler.completion_events drop constraint if exists completion_events_row_check;
alter table scheduler.completion_events drop column if exists row_key;
alter table scheduler.completion_events drop column if exists transition;
alter table scheduler.completion_events alter column meeting_id set not null;
delete from scheduler.metric_totals t where t.transition operator(pg_catalog.<>) 'meetings';
alter table scheduler.metric_totals drop constraint if exists metric_totals_pkey;
alter table scheduler.metric_totals drop column if exists transition;
alter table scheduler.metric_totals add primary key (name, label);
