-- The recurring reconcile job, and the jobs of upcoming meetings that exist already (an existing
-- meetings table, or an upgrade after a downgrade). They belong to the role running this file:
-- the owner of public.meetings (05_owner.sql).
select cron.schedule('meeting-status-reconcile', '* * * * *', scheduler.reconcile_command());

select scheduler.repair(false, false) where scheduler.is_enabled();
