-- unchanged since 0002: function scheduler.next_run(p_schedule pg_catalog.text, p_after pg_catalog.timestamptz)

-- 0006: every transition's jobs (p_transition null), or one transition's; two columns more. The
-- function is dropped first: the columns changed, and a list_jobs() without the argument would
-- match the same calls.
drop function if exists scheduler.list_jobs();
-- unchanged since 0006: function scheduler.list_jobs(p_transition pg_catalog.text default null)
-- unchanged since 0004: function scheduler.repair(p_dry_run boolean, p_skip_locked boolean)
-- unchanged since 0006: function scheduler.skipped_meetings_report(p_dry_run boolean)
-- unchanged since 0006: function scheduler.repair_all(p_dry_run boolean, p_skip_locked boolean)

-- 0006: every transition (p_transition null) or one; dropped first, as list_jobs.
drop function if exists scheduler.recover(boolean);
-- unchanged since 0006: function scheduler.recover(p_dry_run boolean default false, p_transition pg_catalog.text default null)
-- unchanged since 0006: function scheduler.delete_old_runs(p_transition pg_catalog.text)

-- 0006: every transition (the reconcile job: p_transition null) or one; dropped first.
drop function if exists scheduler.reconcile();
-- unchanged since 0006: function scheduler.reconcile(p_transition pg_catalog.text default null)
-- unchanged since 0003: function scheduler.schedule_meeting(p_meeting_id pg_catalog.uuid, p_end_time pg_catalog.timestamptz)
-- unchanged since 0003: function scheduler.cancel_meeting(p_meeting_id pg_catalog.uuid)
-- unchanged since 0003: function scheduler.configure_statuses(p_pending pg_catalog.text default null, p_done pg_catalog.text default null, p_cancelled pg_catalog.text default null)

-- 0006: the whole scheduler (p_transition null) or one transition by name; dropped first.
drop function if exists scheduler.pause();
-- unchanged since 0006: function scheduler.pause(p_transition pg_catalog.text default null)

drop function if exists scheduler.resume();
-- unchanged since 0006: function scheduler.resume(p_transition pg_catalog.text default null)

-- 0006: the runs of every transition's jobs (p_transition null) or of one transition's; two
-- columns more; dropped first, as list_jobs. plpgsql: an unknown name is an error, and the
-- registry is written after it on a new database.
drop function if exists scheduler.history(boolean, integer);
create or replace function scheduler.history(p_failed_only boolean default false,
                                             p_limit integer default 50,
                                             p_transition pg_catalog.text default null)
returns table (run_id bigint, job_id bigint, job_name pg_catalog.text, meeting_id pg_catalog.uuid,
               status pg_catalog.text, return_message pg_catalog.text,
               start_time pg_catalog.timestamptz, end_time pg_catalog.timestamptz,
               transition pg_catalog.text, key pg_catalog.text)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
as $$
declare
    v_meetings boolean := p_transition is null or p_transition operator(pg_catalog.=) 'meetings';
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    return query
    select r.runid, r.jobid, r.job_name, r.meeting_id, r.status,
           -- pg_cron records the row count of a job's last statement ("1 row", or "SELECT 1" with
           -- background workers), which says nothing: say what a successful run left behind
           case when r.status operator(pg_catalog.=) 'succeeded'
                     and (r.return_message operator(pg_catalog.~~) '% row'
                          or r.return_message operator(pg_catalog.~~) '% rows'
                          or r.return_message operator(pg_catalog.~~) 'SELECT %')
                then case when r.transition operator(pg_catalog.<>) 'meetings'
                          then 'checked the row: the due rows of ' operator(pg_catalog.||)
                               r.transition operator(pg_catalog.||) ' are ' operator(pg_catalog.||)
                               coalesce((select t.to_state from scheduler.transitions t
                                         where t.name operator(pg_catalog.=) r.transition),
                                        'done')
                          when r.meeting_id is null
                          then 'reconciled: overdue meetings completed, missing jobs registered, '
                               'orphan jobs removed'
                          else 'checked the meeting: it is now ' operator(pg_catalog.||)
                               coalesce((select m.status::pg_catalog.text from public.meetings m
                                         where m.id operator(pg_catalog.=) r.meeting_id),
                                        'deleted')
                     end
                else r.return_message end,
           r.start_time, r.end_time, r.transition, r.key
    from (
        select d.runid, d.jobid, j.job_name, j.meeting_id,
               -- a pending run dropped because its job was unscheduled is not a failure
               case when d.status operator(pg_catalog.=) 'failed'
                         and d.return_message operator(pg_catalog.=) 'job canceled'
                    then 'canceled' else d.status end as status,
               d.return_message, d.start_time, d.end_time,
               'meetings'::pg_catalog.text as transition, j.meeting_id::pg_catalog.text as key
        from cron.job_run_details d
        cross join lateral scheduler.job_meetings(array[scheduler.command_job(d.command)]) j
        where v_meetings
          and d.username operator(pg_catalog.=) current_user
          -- commands of ours (a cheap filter before command_job), with or without the statement
          -- timeout that precedes them since 0002
          and (d.command operator(pg_catalog.~~) '%select scheduler.complete_meeting(%'
               or d.command operator(pg_catalog.~~) '%select scheduler.reconcile()'
               -- the sweep's runs that did not succeed (it succeeds every second)
               or d.command operator(pg_catalog.=) scheduler.sweep_command()
                  and d.status operator(pg_catalog.<>) 'succeeded')
          and j.job_name is not null
        union all
        -- the other transitions' jobs: the command names the transition and the key
        -- (transition_job_specs, 45_transitions.sql)
        select d.runid, d.jobid, t.job_prefix operator(pg_catalog.||) c.key, null::pg_catalog.uuid,
               case when d.status operator(pg_catalog.=) 'failed'
                         and d.return_message operator(pg_catalog.=) 'job canceled'
                    then 'canceled' else d.status end,
               d.return_message, d.start_time, d.end_time, c.name, c.key
        from cron.job_run_details d
        cross join lateral (
            -- the key as format('%L') wrote it: quotes doubled, and a key with a backslash as an
            -- escape string E'...' with backslashes doubled too (0008)
            select x[1] as name,
                   case when x[2] operator(pg_catalog.=) 'E'
                        then pg_catalog.replace(pg_catalog.replace(x[3], '''''', ''''), '\\', '\')
                        else pg_catalog.replace(x[3], '''''', '''') end as key
            from pg_catalog.regexp_match(
                d.command,
                'select scheduler\.complete_transition\(''([a-z][a-z0-9_]*)'', (E?)''((?:[^'']|'''')*)''\)$') x
        ) c
        left join scheduler.transitions t on t.name operator(pg_catalog.=) c.name
        where d.username operator(pg_catalog.=) current_user
          and d.command operator(pg_catalog.~~) '%select scheduler.complete_transition(%'
          and c.name is not null
          and (p_transition is null or c.name operator(pg_catalog.=) p_transition)
    ) r
    where not p_failed_only or r.status operator(pg_catalog.=) 'failed'
    -- run ids grow with every run pg_cron starts or cancels: newest first, strictly (a canceled
    -- run has no start time)
    order by r.runid desc
    limit p_limit;
end
$$;
comment on function scheduler.history(boolean, integer, pg_catalog.text) is
    'Runs of our jobs (of every transition, or of one), newest first (by run id). Runs canceled '
    'because their job was removed are reported as canceled, not failed; a successful run says '
    'what it left behind.';
-- unchanged since 0003: function scheduler.security_report()

-- Completion events (0004) ------------------------------------------------------------------

-- The event rows as the admin side reads them: events(), claim_events(). 0007: the transition
-- and the key (a meeting's id, another transition's row_key); dropped first, with the functions
-- that return its columns (the types changed).
drop function if exists scheduler.events(integer, pg_catalog.text);
-- unchanged since 0007: drop function scheduler.claim_events(integer, double precision)
-- unchanged since 0007: drop function scheduler.event_rows(bigint[])
-- unchanged since 0007: function scheduler.event_rows(p_event_ids bigint[])
-- unchanged since 0007: function scheduler.events(p_limit integer default 50, p_path pg_catalog.text default null, p_transition pg_catalog.text default null)
-- unchanged since 0004: function scheduler.set_webhooks(p_enabled boolean)
-- unchanged since 0007: function scheduler.claim_events(p_limit integer, p_lease_seconds double precision)
-- unchanged since 0004: function scheduler.record_attempt(p_event_id bigint, p_outcome pg_catalog.text, p_status_code integer default null, p_error pg_catalog.text default null, p_retry_in_seconds double precision default null)
-- unchanged since 0004: function scheduler.lateness_buckets()
-- unchanged since 0007: drop function scheduler.event_counts(bigint[])
-- unchanged since 0007: function scheduler.event_counts(p_event_ids bigint[])
-- unchanged since 0007: function scheduler.purge_events()
-- unchanged since 0004: function scheduler.failed_runs(p_since pg_catalog.timestamptz)
-- unchanged since 0004: function scheduler.health()

-- Everything the Prometheus metrics need, in one call (scheduler-admin metrics, /metrics):
-- health()'s counts, completions by path and the lateness histogram (cumulative: the events
-- kept plus scheduler.metric_totals), failed and retried runs, webhook delivery counts. 0007:
-- of every transition (null: the health part is the meetings', the counts every transition's)
-- or of one (its pending rows, jobs, missing and orphan jobs, overdue rows, its jobs' failed
-- runs, its events' counts); dropped first (0004's took no argument).
drop function if exists scheduler.metrics();
-- unchanged since 0007: function scheduler.metrics(p_transition pg_catalog.text default null)
