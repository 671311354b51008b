-- Locks of ours (0009): one row per kind of work done one at a time ('repair': recover,
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

-- Rows that could not be completed (0009): the key, the error, and when to try again. A set of
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

-- Completions made by the BEFORE triggers on a write (0009): a row whose time had passed when it
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

-- The reconcile job's runs that found another recovery running (0009): how many in a row, and
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
