-- Proposed change to scheduler.unschedule_jobs() (sql/postgres/20_functions.sql), the set-based
-- (superuser) path only: lock the jobs' rows with SELECT ... FOR UPDATE, then DELETE them by id.
-- Not applied: a schema change needs a revision (scripts/next_delta.py).
-- Everything else in the function is as in 20_functions.sql at d49afa7. See stack-depth-superuser.md beside this file.
--
-- Behaviour is unchanged: the same rows are removed (a row deleted meanwhile by another
-- transaction is skipped by both statements; one re-registered meanwhile is followed to its new
-- version by FOR UPDATE and removed), the same count is returned, pg_cron's trigger fires once
-- (none when no job matched: one invalidation less per call that removes nothing).

create or replace function scheduler.unschedule_jobs(p_job_names pg_catalog.text[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
-- the runs of a busy minute queue here one behind the other (per-call path): the wait is their
-- own work (at most 31 transactions of at most 1000 cron.unschedule calls ahead), longer than
-- the 5 s lock_timeout of complete_meeting under load; still well within the runs' 2 min
-- statement timeout
set lock_timeout = '1min'
as $$
declare
    v_count integer;
    -- cron.unschedule calls of this transaction so far, and how many more it may make
    v_used integer;
    v_left integer;
    v_jobs bigint[];
    v_job bigint;
begin
    if coalesce(pg_catalog.cardinality(p_job_names), 0) operator(pg_catalog.=) 0 then
        return 0;
    end if;
    if pg_catalog.has_table_privilege('cron.job', 'DELETE') then
        -- The rows are locked first by a statement that fires no trigger, and then deleted by
        -- a statement that finds them locked by this transaction and so never waits. A DELETE
        -- that waits on a row another transaction holds (a job it deletes or re-registers)
        -- keeps cron.job open meanwhile; pg_cron's statement trigger then fires with it still
        -- open, takes a catalog lock its transaction has not taken yet, and with it every
        -- invalidation of cron.job committed during the wait: PostgreSQL rebuilds the open
        -- relation once per invalidation, recursively, and about 1,500 of them exceed a 2 MB
        -- stack ("stack depth limit exceeded" in the DELETE; benchmarks/findings/). A waiting
        -- SELECT ... FOR UPDATE takes no lock after its wait, and the DELETE's own lock on
        -- cron.job (a new mode) takes the invalidations before it opens the table.
        -- FOR UPDATE needs the UPDATE privilege, which a role that may write cron.job has.
        if pg_catalog.has_table_privilege('cron.job', 'UPDATE') then
            v_jobs := array(select j.jobid from cron.job j
                            where j.jobname operator(pg_catalog.=) any (p_job_names::pg_catalog.name[])
                              and j.username operator(pg_catalog.=) current_user
                            for update of j);
            if coalesce(pg_catalog.cardinality(v_jobs), 0) operator(pg_catalog.=) 0 then
                return 0;
            end if;
            delete from cron.job j
            where j.jobid operator(pg_catalog.=) any (v_jobs);
        else
            delete from cron.job j
            where j.jobname operator(pg_catalog.=) any (p_job_names::pg_catalog.name[])
              and j.username operator(pg_catalog.=) current_user;
        end if;
        get diagnostics v_count = row_count;
    else
        -- a count this function keeps; anything else found there counts as none
        v_used := coalesce(pg_catalog.substring(
            pg_catalog.current_setting('scheduler.unscheduled_in_transaction', true),
            '^[0-9]{1,9}$')::integer, 0);
        v_left := 1000 operator(pg_catalog.-) v_used;
        if v_left operator(pg_catalog.<=) 0 then
            return 0;
        end if;
        -- cron.job is read by statements that call nothing while it is open: a function called
        -- during a scan of cron.job (job_specs, cron.unschedule) takes the invalidations other
        -- sessions committed with cron.job open, and PostgreSQL rebuilds the open relation once
        -- per invalidation, recursively: "stack depth limit exceeded" after a few thousand.
        v_jobs := array(select j.jobid from cron.job j
                        where j.jobname operator(pg_catalog.=) any (p_job_names::pg_catalog.name[])
                          and j.username operator(pg_catalog.=) current_user
                        limit v_left);
        if pg_catalog.cardinality(v_jobs) operator(pg_catalog.=) 0 then
            return 0;
        end if;
        -- One such transaction at a time (until it ends): the runs of a busy minute queue here
        -- with cron.job closed, and take the invalidations of the one before at once. Those of
        -- the jobs still there are removed (a new snapshot: one removed meanwhile is skipped).
        -- A row of scheduler.locks (0009): no role but the owner can take it.
        perform scheduler.take_lock('unschedule', true);
        v_jobs := array(select j.jobid from cron.job j
                        where j.jobid operator(pg_catalog.=) any (v_jobs)
                          and j.username operator(pg_catalog.=) current_user);
        v_count := 0;
        foreach v_job in array v_jobs loop
            perform cron.unschedule(v_job);
            v_count := v_count operator(pg_catalog.+) 1;
        end loop;
        perform pg_catalog.set_config('scheduler.unscheduled_in_transaction',
                                      (v_used operator(pg_catalog.+) v_count)::pg_catalog.text,
                                      true);
    end if;
    return v_count;
end
$$;
comment on function scheduler.unschedule_jobs(pg_catalog.text[]) is
    'Unschedules a set of pg_cron jobs of ours: one DELETE from cron.job when the owner may, else '
    'cron.unschedule per job, at most 1000 per transaction and one such transaction at a time '
    '(concurrent ones made job runs fail); the jobs left over are removed by their own runs and '
    'the reconcile job.';

