-- The recurring reconcile job, and the jobs of upcoming meetings that exist already (an existing
-- meetings table, or an upgrade after a downgrade).
select cron.schedule('meeting-status-reconcile', '* * * * *', 'select scheduler.reconcile()');

select scheduler.repair(false, false) where scheduler.is_enabled();
