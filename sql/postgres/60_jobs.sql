-- The recurring reconcile and sweep jobs, and the jobs of upcoming meetings that exist already
-- (an existing meetings table, or an upgrade after a downgrade). They belong to the role running this file:
-- the owner of public.meetings (05_owner.sql).
select cron.schedule('meeting-status-reconcile', '* * * * *', scheduler.reconcile_command());
-- the seconds sweep where pg_cron takes seconds (1.5+)
select scheduler.sync_sweep();

select scheduler.repair(false, false) where scheduler.is_enabled();
