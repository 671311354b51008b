-- Revision 0012, downgrade: the election of the waker removed (its two functions, then its
-- table); the wakers of 0011 each call wake() with their random delay.
drop function if exists scheduler.claim_waker(text,double precision,text);
drop function if exists scheduler.release_waker(text,text);
drop table if exists scheduler.waker_lease;
