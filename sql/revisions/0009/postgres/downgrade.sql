-- Downgrade of revision 0009, after the functions of 0008 were applied again (from the frozen
-- files of the revisions that last defined them): the registered transitions' BEFORE triggers
-- take their 0008 arguments again, and what 0009 added goes. Privileges 0009 revoked
-- (TRIGGER, TRUNCATE, REFERENCES of other roles on the tables and partitions) stay revoked.
select scheduler.create_transition_triggers(t.name)
from scheduler.transitions t
where not t.builtin
  and exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation);

drop function if exists scheduler.table_tree(pg_catalog.regclass);
drop function if exists scheduler.foreign_triggers(pg_catalog.regclass);
drop function if exists scheduler.unsafe_relations(pg_catalog.regclass);
drop function if exists scheduler.foreign_grants(pg_catalog.regclass);
drop function if exists scheduler.secure_table(pg_catalog.regclass);
drop function if exists scheduler.require_safe_row(pg_catalog.regclass, pg_catalog.oid, pg_catalog.text);
drop function if exists scheduler.take_lock(pg_catalog.text, boolean);
drop function if exists scheduler.note_failing_row(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text);
drop function if exists scheduler.complete_set(pg_catalog.text, pg_catalog.text[], boolean, pg_catalog.text, integer, pg_catalog.oid[]);
drop function if exists scheduler.complete_rows(pg_catalog.text, boolean, pg_catalog.text, integer);
drop function if exists scheduler.clear_failing_rows(pg_catalog.text);
drop function if exists scheduler.failing_rows_report(pg_catalog.text, integer);
drop function if exists scheduler.table_safety();
drop function if exists scheduler.reconcile_failed_in_a_row();

drop table if exists scheduler.locks;
drop table if exists scheduler.failing_rows;
drop table if exists scheduler.write_completions;
drop table if exists scheduler.reconcile_state;
