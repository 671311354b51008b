-- Downgrade of 0005 to 0004: remove every registered transition but meetings (their triggers,
-- indexes and jobs; never their tables' rows), then what 0005 added. 0004's 20_functions.sql and
-- 40_admin.sql, applied next, bring back register_jobs/unregister_jobs, the sweep, recover and
-- reconcile without them.
select scheduler.remove_transition(t.name) from scheduler.transitions t where not t.builtin;
drop function if exists scheduler.transitions();
drop function if exists scheduler.remove_transition(pg_catalog.text);
drop function if exists scheduler.add_transition(pg_catalog.text, pg_catalog.regclass, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text[], pg_catalog.text, pg_catalog.text);
drop function if exists scheduler.sweep_transitions();
drop function if exists scheduler.repair_transitions(boolean, boolean);
drop function if exists scheduler.other_transitions();
drop function if exists scheduler.repair_transition(pg_catalog.text, boolean, boolean);
drop function if exists scheduler.complete_transition(pg_catalog.text, pg_catalog.text);
drop function if exists scheduler.complete_due_transition(pg_catalog.text, boolean);
drop function if exists scheduler.drop_transition_triggers(pg_catalog.text);
drop function if exists scheduler.create_transition_triggers(pg_catalog.text);
drop function if exists scheduler.transition_after_write();
drop function if exists scheduler.transition_before_write();
drop function if exists scheduler.unregister_transition_jobs(pg_catalog.text, pg_catalog.text[]);
drop function if exists scheduler.register_transition_jobs(pg_catalog.text, pg_catalog.text[], pg_catalog.timestamptz[]);
drop function if exists scheduler.transition_job_specs(pg_catalog.text, pg_catalog.text, pg_catalog.text[], pg_catalog.timestamptz[]);
drop function if exists scheduler.transition_target(pg_catalog.text);
drop table if exists scheduler.transitions;
