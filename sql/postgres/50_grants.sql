-- Least privilege. Nothing of ours is executable by PUBLIC: the trigger functions run as their
-- owner (the migrating role) when the triggers fire, whoever writes meetings, and the job
-- functions run as the jobs' owner, which is the same role.
revoke all on all functions in schema scheduler from public;
revoke all on all tables in schema scheduler from public;
