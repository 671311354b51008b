-- The downgrade of revision 0009 on SQLite: the rows recorded as failing to complete are
-- forgotten with their table (0008 retries every due row at every completion).
DROP TABLE IF EXISTS scheduler_failing_rows;
