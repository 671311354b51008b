-- Admin functions, history: the jobs of ours with their next runs, and their past runs.
-- Python twin: scheduler_admin/sqlite/history.py.
-- Callable with psycopg and through Supabase RPC; the security definer ones because the role
-- that calls them (service_role on Supabase) has no rights on the cron schema. Every one pins
-- search_path = pg_catalog, pg_temp and qualifies every name; all are owned by the owner of
-- public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

-- Next time a five-field "M H D MON *" (or "* * * * *") schedule fires at or after p_after, UTC.
create or replace function scheduler.next_run(p_schedule pg_catalog.text,
                                              p_after pg_catalog.timestamptz)
returns pg_catalog.timestamptz
language plpgsql stable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
-- plpgsql, not SQL: list_jobs calls it once per job, and plpgsql keeps its plans between calls.
declare
    v_field integer[];
    v_year integer;
    v_at pg_catalog.timestamptz;
begin
    if p_schedule operator(pg_catalog.=) '* * * * *' then
        return scheduler.job_minute(p_after) at time zone 'UTC';
    end if;
    if p_schedule operator(pg_catalog.!~) '^\d{1,2} \d{1,2} \d{1,2} \d{1,2} \*$' then
        return null;
    end if;
    v_field := (pg_catalog.string_to_array(p_schedule, ' '))[1:4]::integer[];
    v_year := extract(year from p_after at time zone 'UTC')::integer;
    -- 8 years reach the next 29 February even across a century that is not a leap year.
    for v_offset in 0 .. 8 loop
        v_at := pg_catalog.make_timestamptz(v_year operator(pg_catalog.+) v_offset, v_field[4], 1,
                                            v_field[2], v_field[1], 0, 'UTC')
                operator(pg_catalog.+) pg_catalog.make_interval(days => v_field[3] operator(pg_catalog.-) 1);
        if pg_catalog.date_part('month', v_at at time zone 'UTC') operator(pg_catalog.=) v_field[4]
           and v_at operator(pg_catalog.>=) p_after then
            return v_at;
        end if;
    end loop;
    return null;
end
$$;
comment on function scheduler.next_run(pg_catalog.text, pg_catalog.timestamptz) is
    'Next firing (UTC) of a schedule of ours at or after a time; null for other schedules.';

-- Every transition's jobs (p_transition null), or one transition's.
create or replace function scheduler.list_jobs(p_transition pg_catalog.text default null)
returns table (meeting_id pg_catalog.uuid, job_id bigint, job_name pg_catalog.text,
               schedule pg_catalog.text, next_run pg_catalog.timestamptz,
               end_time pg_catalog.timestamptz, meeting_status pg_catalog.text, active boolean,
               transition pg_catalog.text, key pg_catalog.text)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
-- statistics lag behind bulk changes (cron.job analyzed empty, then 20,000 jobs): a nested
-- loop chosen on such an estimate took 20 to 40 s where a hash join takes milliseconds
set enable_nestloop = off
as $$
declare
    -- pg_cron 1.5+ has cron.job.active; 1.4 has no such column (every job is active). The query
    -- text is one of two constants: nothing from a row is ever put into it.
    v_active pg_catalog.text := case when exists (
            select 1 from pg_catalog.pg_attribute a
            where a.attrelid operator(pg_catalog.=) 'cron.job'::pg_catalog.regclass
              and a.attname operator(pg_catalog.=) 'active' and not a.attisdropped)
        then 'j.active' else 'true' end;
    -- the meetings' jobs (and the reconcile and sweep jobs) are listed: true or false, a constant
    v_meetings pg_catalog.text := case when p_transition is null
                                            or p_transition operator(pg_catalog.=) 'meetings'
                                       then 'true' else 'false' end;
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    -- Jobs are matched to upcoming meetings by the job name computed from each meeting; only the
    -- jobs left over (orphans, the reconcile job) have their names parsed: parsing every name
    -- cost more than the rest of this function at 20,000 jobs. The other transitions' jobs come
    -- from scheduler.transition_jobs() (45_transitions.sql).
    return query execute pg_catalog.format($query$
with ours as materialized (
    select j.jobid, j.jobname::pg_catalog.text as jobname, j.schedule, %s as active
    from cron.job j
    where %s
      and j.username operator(pg_catalog.=) current_user
      and j.jobname operator(pg_catalog.~~) 'meeting-status-%%'
), upcoming as materialized (
    select u.meeting_id, u.job_name::pg_catalog.text as job_name, u.schedule, u.fires_at, u.end_time
    from scheduler.upcoming_jobs() u
), leftover as materialized (
    select o.* from ours o
    where not exists (select 1 from upcoming u where u.job_name operator(pg_catalog.=) o.jobname)
), parsed as materialized (
    select p.job_name, p.meeting_id
    from scheduler.job_meetings(array(select l.jobname from leftover l)) p
)
select u.meeting_id, o.jobid, o.jobname, o.schedule,
       case when o.schedule operator(pg_catalog.=) u.schedule
                 and u.fires_at operator(pg_catalog.>=) pg_catalog.now()
                 and u.fires_at operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.+) interval '1 year')
            then u.fires_at
            else scheduler.next_run(o.schedule, pg_catalog.now()) end,
       u.end_time, (select scheduler.pending_status()), o.active,
       'meetings'::pg_catalog.text, u.meeting_id::pg_catalog.text
from ours o join upcoming u on u.job_name operator(pg_catalog.=) o.jobname
union all
select p.meeting_id, l.jobid, l.jobname, l.schedule, scheduler.next_run(l.schedule, pg_catalog.now()),
       m.end_time, m.status::pg_catalog.text, l.active,
       'meetings'::pg_catalog.text, p.meeting_id::pg_catalog.text
from leftover l
join parsed p on p.job_name operator(pg_catalog.=) l.jobname
left join public.meetings m on m.id operator(pg_catalog.=) p.meeting_id
where p.meeting_id is not null
   or l.jobname operator(pg_catalog.=) any (array['meeting-status-reconcile', 'meeting-status-sweep'])
union all
select * from scheduler.transition_jobs($1)
order by 5, 3
$query$, v_active, v_meetings) using p_transition;
end
$$;
comment on function scheduler.list_jobs(pg_catalog.text) is
    'Every pg_cron job of ours (meeting jobs, the reconcile and sweep jobs, the other '
    'transitions'' jobs), or one transition''s, with its row and next run in UTC. An orphan job '
    'has a null meeting_status.';

-- The runs of every transition's jobs (p_transition null) or of one transition's. plpgsql: an
-- unknown name is an error, and the registry is written after it on a new database.
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

-- Failed runs of our jobs kept in cron.job_run_details since a time, and how many of them were
-- retried: a meeting job's run whose meeting is no longer pending (a later run, the sweep, the
-- waker or the reconcile job completed it), or a later run of the same job that succeeded.
create or replace function scheduler.failed_runs(p_since pg_catalog.timestamptz)
returns table (failed bigint, retried bigint)
language sql stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
select pg_catalog.count(*),
       pg_catalog.count(*) filter (where
           case when h.meeting_id is not null
                then not exists (select 1 from public.meetings m
                                 where m.id operator(pg_catalog.=) h.meeting_id
                                   and m.status operator(pg_catalog.=) (select scheduler.pending_status()))
                else exists (select 1 from cron.job_run_details d
                             where d.jobid operator(pg_catalog.=) h.job_id
                               and d.runid operator(pg_catalog.>) h.run_id
                               and d.status operator(pg_catalog.=) 'succeeded')
           end)
from scheduler.history(true, 2147483647) h
where h.start_time operator(pg_catalog.>) p_since or h.start_time is null
$$;
comment on function scheduler.failed_runs(pg_catalog.timestamptz) is
    'Failed runs of our jobs since a time, and those retried (meeting completed later, or a '
    'later run of the same job succeeded).';
