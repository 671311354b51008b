-- Revision 0009, after the functions: the BEFORE trigger of every registered transition takes
-- its new arguments (name, key column and job prefix first: the key's length is checked and a
-- completion on write is noted for its event).
select scheduler.create_transition_triggers(t.name)
from scheduler.transitions t
where not t.builtin
  and exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation);

-- The meetings' BEFORE trigger takes its third argument (whether meetings has updated_at).
select scheduler.create_before_write_trigger();
