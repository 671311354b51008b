-- Downgrade of 0006 to 0005, last part (0005's functions are back and call none of these): what
-- 0006 added, and the registry's paused column. A transition paused by name acts again.
drop function if exists scheduler.transition_health(pg_catalog.text);
drop function if exists scheduler.transition_triggers(pg_catalog.text, boolean);
drop function if exists scheduler.transition_report(pg_catalog.text, boolean, boolean);
drop function if exists scheduler.transition_next_time(pg_catalog.text);
drop function if exists scheduler.transition_jobs(pg_catalog.text);
drop function if exists scheduler.named_transitions(pg_catalog.text);
drop function if exists scheduler.paused_transitions();
drop function if exists scheduler.repair_all(boolean, boolean);
drop function if exists scheduler.skipped_meetings_report(boolean);
drop function if exists scheduler.delete_old_runs(pg_catalog.text);
drop function if exists scheduler.transition_active(pg_catalog.text);
drop function if exists scheduler.remove_stray_transition_jobs();
alter table scheduler.transitions drop column if exists paused;
