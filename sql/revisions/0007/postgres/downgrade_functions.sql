-- Downgrade of 0007 to 0006, last part (0006's functions are back and call none of these).
drop function if exists scheduler.complete_due_transition(pg_catalog.text, boolean, pg_catalog.text);
drop function if exists scheduler.sweep_transitions(pg_catalog.text);
