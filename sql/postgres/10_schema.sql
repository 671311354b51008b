-- Schema, settings and the meetings table.
-- (create schema checks the right to create schemas in the database even when the schema exists,
-- and the owner of meetings, who runs this file when it is not the migrating role, may lack it)
do $schema$
begin
    if pg_catalog.to_regnamespace('scheduler') is null then
        create schema scheduler;
    end if;
end
$schema$;
comment on schema scheduler is
    'Meeting status scheduler: pg_cron jobs that mark upcoming meetings done when they end.';
revoke all on schema scheduler from public;

create table if not exists scheduler.settings (
    singleton boolean primary key default true check (singleton),
    enabled boolean not null default true,
    history_retention interval not null default interval '7 days'
        check (history_retention >= interval '0'),
    updated_at timestamptz not null default pg_catalog.now(),
    -- The words of public.meetings.status the scheduler acts on, for tables that use their own
    -- (scheduled/completed, ...): a pending meeting gets a job and becomes done at its end_time,
    -- cancel_meeting sets cancelled, any other status is left alone. Set with
    -- scheduler.configure_statuses() (the migration calls it when it is given other words).
    pending_status pg_catalog.text not null default 'upcoming',
    done_status pg_catalog.text not null default 'done',
    cancelled_status pg_catalog.text not null default 'cancelled',
    -- The seconds sweep (pg_cron 1.5+): its interval in seconds, 0 = off (20_functions.sql).
    sweep_seconds integer not null default 1
        constraint settings_sweep_seconds_check check (sweep_seconds between 0 and 59),
    -- while true (the webhook dispatcher turns it on), new completion events wait for delivery
    webhooks boolean not null default false,
    -- The default job horizon of every transition (0011, 46_horizon.sql): a pending row gets its
    -- job once its time is within it; null = none (every pending row has its job).
    job_horizon pg_catalog.interval
        constraint settings_job_horizon_check check (job_horizon >= interval '15 minutes'),
    constraint settings_statuses_check check (
        pending_status operator(pg_catalog.<>) '' and done_status operator(pg_catalog.<>) ''
        and cancelled_status operator(pg_catalog.<>) ''
        and pending_status operator(pg_catalog.<>) done_status
        and pending_status operator(pg_catalog.<>) cancelled_status
        and done_status operator(pg_catalog.<>) cancelled_status)
);
comment on table scheduler.settings is
    'One row. enabled = false pauses the scheduler (triggers register no job, jobs and the '
    'reconcile job change nothing); history_retention bounds our rows in cron.job_run_details; '
    'pending_status, done_status and cancelled_status are the words of meetings.status we act on; '
    'sweep_seconds is the interval of the seconds sweep (pg_cron 1.5+; 0 turns it off); '
    'job_horizon is the default job horizon (null: none).';
insert into scheduler.settings (singleton) values (true) on conflict do nothing;
-- Row-level security with no policy: only the owner (and roles that bypass RLS) see the row, so
-- a schema exposed through an API (Supabase's Data API) shows nothing of it by accident.
alter table scheduler.settings enable row level security;

-- public.meetings is the application's table: create it when it is missing, otherwise check
-- that the columns we rely on exist with types we can use. Never touch its rows.
do $meetings$
declare
    v_type text;
    v_column text;
    v_expected text[];
begin
    if pg_catalog.to_regclass('public.meetings') is null then
        -- with the configured words (settings, one row: format %L quotes them)
        execute (select pg_catalog.format($create$
            create table public.meetings (
                id uuid primary key default gen_random_uuid(),
                title text,
                start_time timestamptz,
                end_time timestamptz not null,
                status text not null default %1$L
                    constraint meetings_status_check check (status in (%1$L, %2$L, %3$L)),
                created_at timestamptz not null default now(),
                updated_at timestamptz not null default now()
            );
            create index meetings_upcoming_end_time_idx on public.meetings (end_time)
                where status = %1$L;
            $create$, s.pending_status, s.done_status, s.cancelled_status)
            from scheduler.settings s);
        -- No policy: only the owner sees the rows until the application adds its own policies
        -- (README, "Security model"). On Supabase this keeps anon and authenticated out.
        alter table public.meetings enable row level security;
        return;
    end if;
    foreach v_column in array array['id', 'status', 'end_time'] loop
        select pg_catalog.format_type(a.atttypid, null) into v_type
        from pg_catalog.pg_attribute a
        where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
          and a.attname operator(pg_catalog.=) v_column and a.attnum > 0 and not a.attisdropped;
        v_expected := case v_column
            when 'id' then array['uuid']
            when 'status' then array['text', 'character varying']
            else array['timestamp with time zone'] end;
        if v_type is null then
            raise exception 'public.meetings exists but has no column "%"', v_column
                using errcode = 'undefined_column',
                      hint = pg_catalog.format('Add the column (%s) or let the migration create '
                                               'the table.', v_expected[1]);
        end if;
        if not v_type operator(pg_catalog.=) any (v_expected) then
            raise exception 'public.meetings.% has type %, expected %', v_column, v_type,
                            pg_catalog.array_to_string(v_expected, ' or ')
                using errcode = 'datatype_mismatch',
                      hint = pg_catalog.format('Change it, e.g. alter table public.meetings alter '
                                               'column %I type %s.', v_column, v_expected[1]);
        end if;
    end loop;
    -- One job per meeting is named after its id: ids must be unique, or recovery and the
    -- reconcile job would rewrite the same job for every duplicate, forever.
    if not exists (
        select 1 from pg_catalog.pg_index i
        where i.indrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
          and i.indisunique and i.indpred is null and i.indexprs is null
          and i.indnkeyatts operator(pg_catalog.=) 1
          and i.indkey[0] operator(pg_catalog.=) (
              select a.attnum from pg_catalog.pg_attribute a
              where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
                and a.attname operator(pg_catalog.=) 'id')) then
        raise exception 'public.meetings.id is not unique: it needs a primary key or a unique constraint'
            using errcode = 'invalid_table_definition',
                  hint = 'Each meeting''s job is named after its id. Run: alter table public.meetings '
                         'add primary key (id); (or add constraint meetings_id_key unique (id)) '
                         'after removing duplicate ids.';
    end if;
end
$meetings$;

-- Completion events: one row per completion our paths made, written by the completing
-- statement itself (same transaction, set-based: complete_due() in 20_functions.sql and the
-- AFTER triggers for the BEFORE trigger's completions). What the webhook dispatcher delivers,
-- what `scheduler-admin events` shows and what the metrics count. The reconcile job deletes rows
-- older than history_retention, adding their counts to scheduler.metric_totals first.
-- settings.webhooks: while true (the dispatcher turns it on), new events wait for delivery.
-- Every registered transition (45_transitions.sql) has its events here: a meeting's event names
-- its meeting (meeting_id), another transition's row its key as text (row_key).
create table if not exists scheduler.completion_events (
    event_id bigint generated always as identity primary key,
    -- the webhook's idempotency key
    event_key pg_catalog.uuid not null default pg_catalog.gen_random_uuid(),
    meeting_id pg_catalog.uuid,
    end_time pg_catalog.timestamptz not null,
    completed_at pg_catalog.timestamptz not null,
    lateness pg_catalog.interval generated always as (completed_at operator(pg_catalog.-) end_time) stored,
    -- job: a meeting's job run; sweep: the seconds sweep job; waker: the application's waker;
    -- reconcile: the reconcile job; recover: recover, resume or the migration; write: a write to
    -- meetings with an end time already past (the BEFORE trigger completed it)
    path pg_catalog.text not null constraint completion_events_path_check
        check (path in ('job', 'sweep', 'waker', 'reconcile', 'recover', 'write')),
    -- null: webhooks were off when it completed
    delivery pg_catalog.text constraint completion_events_delivery_check
        check (delivery in ('pending', 'delivered', 'failed')),
    -- delivery attempts, counted when a dispatcher claims the event
    attempts integer not null default 0,
    next_attempt_at pg_catalog.timestamptz,
    -- a dispatcher's lease: until then no other dispatcher claims it
    claimed_until pg_catalog.timestamptz,
    delivered_at pg_catalog.timestamptz,
    last_error pg_catalog.text,
    transition pg_catalog.text not null default 'meetings',
    row_key pg_catalog.text,
    constraint completion_events_row_check check (meeting_id is not null or row_key is not null)
);
comment on table scheduler.completion_events is
    'One row per meeting completed by the scheduler (path: job, sweep, waker, reconcile, recover, '
    'write), written in the completing transaction; webhook delivery state. Kept for '
    'settings.history_retention.';
create index if not exists completion_events_pending_idx
    on scheduler.completion_events (next_attempt_at) where delivery = 'pending';
create index if not exists completion_events_completed_at_idx
    on scheduler.completion_events (completed_at);
alter table scheduler.completion_events enable row level security;

create table if not exists scheduler.webhook_attempts (
    attempt_id bigint generated always as identity primary key,
    event_id bigint not null
        references scheduler.completion_events (event_id) on delete cascade,
    attempt integer not null,
    attempted_at pg_catalog.timestamptz not null default pg_catalog.now(),
    -- delivered (2xx), retry (will be tried again), failed (given up)
    outcome pg_catalog.text not null constraint webhook_attempts_outcome_check
        check (outcome in ('delivered', 'retry', 'failed')),
    status_code integer,
    error pg_catalog.text
);
comment on table scheduler.webhook_attempts is
    'Every webhook delivery attempt of a completion event: outcome, HTTP status, error.';
create index if not exists webhook_attempts_event_idx on scheduler.webhook_attempts (event_id);
alter table scheduler.webhook_attempts enable row level security;

-- The counts of the events the retention deleted, so that the metrics' counters never go down:
-- (completions, <path>), (lateness_le, <bucket>), (lateness_count, ''), (lateness_sum, ''),
-- (webhook_delivered, ''), (webhook_failed, ''), (webhook_attempt_failures, ''), per transition.
create table if not exists scheduler.metric_totals (
    name pg_catalog.text not null,
    label pg_catalog.text not null default '',
    value double precision not null default 0,
    transition pg_catalog.text not null default 'meetings',
    primary key (name, label, transition)
);
comment on table scheduler.metric_totals is
    'Counts of completion events and webhook attempts deleted by the retention (metrics() adds '
    'them to the rows kept).';
alter table scheduler.metric_totals enable row level security;

-- Locks of ours: one row per kind of work done one at a time ('repair': recover,
-- reconcile and a change of statuses; 'unschedule': the per-call unscheduling of jobs), locked
-- FOR UPDATE until the transaction ends. Only the owner may lock a row of this table (FOR
-- UPDATE needs UPDATE on it); a public advisory key could be taken by any role that may connect,
-- and held, to stall every sweep, recovery and reconciliation.
create table if not exists scheduler.locks (
    name pg_catalog.text primary key
);
comment on table scheduler.locks is
    'One row per kind of work done one at a time (repair, unschedule), locked FOR UPDATE until the '
    'transaction ends: locks no role but the owner can take.';
insert into scheduler.locks (name) values ('repair'), ('unschedule') on conflict do nothing;
alter table scheduler.locks enable row level security;

-- Rows that could not be completed: the key, the error, and when to try again. A set of
-- due rows whose update fails is split until the rows that fail are alone; each of those is
-- recorded here and left out of every completion until retry_at (10 s, doubling per attempt,
-- at most an hour), so that one row that cannot be completed (a CHECK constraint, a trigger of
-- the application's or of another transition that rejects it) never holds up another, and
-- costs bounded work. The entry goes when the row completes, or leaves its pending state.
create table if not exists scheduler.failing_rows (
    transition pg_catalog.text not null,
    row_key pg_catalog.text not null,
    error pg_catalog.text not null,
    sqlstate pg_catalog.text,
    attempts integer not null default 1,
    first_failed_at pg_catalog.timestamptz not null default pg_catalog.now(),
    last_failed_at pg_catalog.timestamptz not null default pg_catalog.now(),
    retry_at pg_catalog.timestamptz not null,
    primary key (transition, row_key)
);
comment on table scheduler.failing_rows is
    'Rows whose completion failed: transition, key, error, attempts; left out of every completion '
    'until retry_at (back-off from 10 s to an hour). Shown by doctor and the metrics.';
alter table scheduler.failing_rows enable row level security;

-- Completions made by the BEFORE triggers on a write: a row whose time had passed when it
-- was written pending is given its to-state by the trigger, which notes it here (it runs as the
-- owner); the AFTER statement trigger of the same statement turns the notes of its transaction
-- into completion events (path write) and deletes them. A setting of the session, which any
-- writer may set itself, decides nothing: only rows the scheduler completed produce events.
create unlogged table if not exists scheduler.write_completions (
    txid pg_catalog.xid8 not null,
    transition pg_catalog.text not null,
    row_key pg_catalog.text not null
);
comment on table scheduler.write_completions is
    'Rows a BEFORE trigger of ours completed on a write, by transaction, until the AFTER trigger '
    'of the statement records their completion events.';
-- (no index: it holds only the notes of statements in progress, and an index entry per note
-- cost more than the scan of them)
alter table scheduler.write_completions enable row level security;

-- The reconcile job's runs that found another recovery running: how many in a row, and
-- when it last did its work; doctor and the metrics show a reconcile skipped several times in a
-- row (its failed runs are counted from cron.job_run_details).
create table if not exists scheduler.reconcile_state (
    singleton boolean primary key default true check (singleton),
    skipped_in_a_row integer not null default 0,
    last_skipped_at pg_catalog.timestamptz,
    last_done_at pg_catalog.timestamptz
);
comment on table scheduler.reconcile_state is
    'The reconcile job''s skips in a row (another recovery held the lock) and its last run that '
    'did its work.';
insert into scheduler.reconcile_state (singleton) values (true) on conflict do nothing;
alter table scheduler.reconcile_state enable row level security;

-- The election of the application's waker (scheduler_admin/waker.py; claim_waker() and
-- release_waker() in 21_waker.sql): one row per scope ('*': the wakers of every transition, or a
-- transition's name), naming the waker instance that holds the lease and until when. Only the
-- holder calls wake(); the others stand by and take the lease over once it has expired. Only the
-- owner may write it (row-level security, no grants): a lease row, unlike a public advisory
-- key, is something no other role can take. Unlogged: nothing in it outlives a lease of a second
-- or two, so a crash that empties it loses nothing, and renewals write no WAL.
create unlogged table if not exists scheduler.waker_lease (
    scope pg_catalog.text primary key,
    holder pg_catalog.text not null,
    expires_at pg_catalog.timestamptz not null,
    acquired_at pg_catalog.timestamptz not null
);
comment on table scheduler.waker_lease is
    'The active waker per scope (* or a transition): its holder id and the end of its lease, '
    'written only through claim_waker() and release_waker().';
alter table scheduler.waker_lease enable row level security;
