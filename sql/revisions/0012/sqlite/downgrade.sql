-- Revision 0012 on SQLite, downgrade: the waker's lease dropped (every waker calls wake()).
DROP TABLE IF EXISTS scheduler_waker_lease;
