-- Naming, schedules and the completion function that a meeting's job runs.

create or replace function scheduler.job_name(p_meeting_id uuid)
returns text
language sql immutable strict parallel safe
as $$
select 'meeting-status-' operator(pg_catalog.||) p_meeting_id::text
$$;
comment on function scheduler.job_name(uuid) is
    'Name of the pg_cron job of a meeting: meeting-status-<meeting id>.';

create or replace function scheduler.meeting_id(p_job_name text)
returns uuid
language sql immutable strict parallel safe
as $$
select case when p_job_name operator(pg_catalog.~) '^meeting-status-[0-9a-f-]{36}$'
            then pg_catalog.substr(p_job_name, 16)::uuid end
$$;
comment on function scheduler.meeting_id(text) is
    'Meeting id in a job name of ours, null for any other name (the reconcile job included).';

create or replace function scheduler.job_minute(p_end_time timestamptz)
returns timestamp
language sql immutable strict parallel safe
as $$
select case
    when pg_catalog.date_trunc('minute', p_end_time at time zone 'UTC')
         operator(pg_catalog.=) (p_end_time at time zone 'UTC')
    then p_end_time at time zone 'UTC'
    else pg_catalog.date_trunc('minute', p_end_time at time zone 'UTC')
         operator(pg_catalog.+) interval '1 minute'
end
$$;
comment on function scheduler.job_minute(timestamptz) is
    'First UTC minute at or after end_time (rounded up: a job never fires before end_time).';

create or replace function scheduler.cron_schedule(p_end_time timestamptz)
returns text
language sql immutable strict parallel safe
as $$
select pg_catalog.format('%s %s %s %s *', extract(minute from m)::integer,
                         extract(hour from m)::integer, extract(day from m)::integer,
                         extract(month from m)::integer)
from (select scheduler.job_minute(p_end_time) as m) t
$$;
comment on function scheduler.cron_schedule(timestamptz) is
    'Five-field cron expression (minute hour day month *, in UTC as pg_cron uses) of the first '
    'minute at or after end_time. It repeats yearly; the job''s command re-checks end_time.';

create or replace function scheduler.job_command(p_meeting_id uuid)
returns text
language sql immutable strict parallel safe
as $$
select pg_catalog.format('select scheduler.complete_meeting(%L::uuid)', p_meeting_id)
$$;
comment on function scheduler.job_command(uuid) is
    'SQL command of a meeting''s job, built with format(%L).';

create or replace function scheduler.is_enabled()
returns boolean
language sql stable
set search_path = ''
as $$
select coalesce((select s.enabled from scheduler.settings s), true)
$$;

-- Register (or re-register: pg_cron upserts by job name and owner) the job of one meeting.
create or replace function scheduler.register_job(p_meeting_id uuid, p_end_time timestamptz)
returns bigint
language sql
set search_path = ''
as $$
select cron.schedule(scheduler.job_name(p_meeting_id), scheduler.cron_schedule(p_end_time),
                     scheduler.job_command(p_meeting_id))
$$;
comment on function scheduler.register_job(uuid, timestamptz) is
    'Schedules the pg_cron job of one meeting through cron.schedule (never writes cron.job).';

-- Unschedule the job of one meeting, if it has one. Returns the number of jobs removed.
create or replace function scheduler.unregister_job(p_meeting_id uuid)
returns integer
language sql
set search_path = ''
as $$
select (select pg_catalog.count(cron.unschedule(j.jobid))::integer
        from cron.job j
        where j.jobname operator(pg_catalog.=) scheduler.job_name(p_meeting_id)::name
          and j.username operator(pg_catalog.=) current_user)
$$;
comment on function scheduler.unregister_job(uuid) is
    'Unschedules the pg_cron job of one meeting if it exists (never writes cron.job).';

-- What a meeting's job runs. Completes every upcoming meeting whose end time has passed (the
-- given one included), skipping rows another transaction holds, so that the jobs of one busy
-- minute finish together: completing a meeting unschedules its job through the update trigger,
-- and pg_cron drops the pending runs of unscheduled jobs. A meeting that is not due yet is left
-- alone (a five-field schedule repeats yearly, and a run can come early). A job whose meeting is
-- gone or no longer upcoming removes itself.
create or replace function scheduler.complete_meeting(p_meeting_id uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_completed integer;
begin
    if not scheduler.is_enabled() then
        return 0;
    end if;
    with due as (
        select m.id from public.meetings m
        where m.status operator(pg_catalog.=) 'upcoming'
          and m.end_time operator(pg_catalog.<=) pg_catalog.now()
        for update skip locked
    )
    update public.meetings m set status = 'done'
    from due where m.id operator(pg_catalog.=) due.id;
    get diagnostics v_completed = row_count;

    if not exists (select 1 from public.meetings m
                   where m.id operator(pg_catalog.=) p_meeting_id
                     and m.status operator(pg_catalog.=) 'upcoming') then
        perform scheduler.unregister_job(p_meeting_id);
    end if;
    return v_completed;
end
$$;
comment on function scheduler.complete_meeting(uuid) is
    'Run by the job meeting-status-<id>: marks done the upcoming meetings whose end_time has '
    'passed (never one that has not ended), and removes the job if its meeting is not upcoming.';
