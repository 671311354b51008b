-- Revision 0012 (written by scripts/next_delta.py): one active waker among the application's
-- instances, elected on a lease only the owner's roles can write.
--   * scheduler.waker_lease (unlogged, row-level security, no grants): the holder of the lease
--     per scope ('*' or a transition's name) and until when.
--   * scheduler.claim_waker() takes or renews the lease (or reports who holds it), one short
--     statement per call; scheduler.release_waker() gives it up on a clean stop. Only the holder
--     calls wake(); the others stand by and take over once its lease has expired.

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

-- The election of the application's waker (scheduler_admin/waker.py). Several application
-- instances each run a waker; one of them, the holder of the lease in scheduler.waker_lease,
-- calls wake(), and the others stand by, trying for the lease about twice a second, so that one
-- of them takes over within two seconds when the holder's process or connection dies. Each call
-- is one short statement in its own transaction (the waker's session is in autocommit): no
-- transaction stays open to hold back vacuum. The lease is timed by the database's clock alone.
-- Python twin: scheduler_admin/sqlite/waker.py. security definer, like wake(): the role that
-- calls these (service_role on Supabase) may not touch the table; execute is granted in
-- 50_grants.sql.

-- Takes or renews the lease of p_holder (a waker instance's id) for p_lease_seconds from now,
-- when nobody holds it, p_holder holds it already, or the holder's lease has expired. A standby
-- whose holder's lease runs writes nothing (a read, then no upsert). p_transition: the scope of
-- a waker of one transition (null: of every transition). Answers {held, holder, expires_at,
-- now}: whether p_holder holds the lease, who does and until when, by the database's clock.
create or replace function scheduler.claim_waker(p_holder pg_catalog.text,
                                                 p_lease_seconds double precision,
                                                 p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
declare
    v_scope pg_catalog.text := coalesce(p_transition, '*');
    v_now pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    v_holder pg_catalog.text;
    v_until pg_catalog.timestamptz;
begin
    if p_holder is null or pg_catalog.length(p_holder) operator(pg_catalog.<) 1
       or pg_catalog.length(p_holder) operator(pg_catalog.>) 200
       or p_lease_seconds is null or p_lease_seconds operator(pg_catalog.<=) 0
       or p_lease_seconds operator(pg_catalog.>) 60 then
        raise exception 'claim_waker needs a holder of 1 to 200 characters and a lease of more '
                        'than 0 and at most 60 seconds'
            using errcode = 'invalid_parameter_value';
    end if;
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    select l.holder, l.expires_at into v_holder, v_until
    from scheduler.waker_lease l where l.scope operator(pg_catalog.=) v_scope;
    if not found or v_holder operator(pg_catalog.=) p_holder
       or v_until operator(pg_catalog.<=) v_now then
        -- one statement: of two claimers, the second sees the first's row and its lease
        insert into scheduler.waker_lease as l (scope, holder, expires_at, acquired_at)
        values (v_scope, p_holder,
                v_now operator(pg_catalog.+) pg_catalog.make_interval(secs => p_lease_seconds),
                v_now)
        on conflict (scope) do update
            set holder = excluded.holder,
                expires_at = excluded.expires_at,
                acquired_at = case when l.holder operator(pg_catalog.=) excluded.holder
                                   then l.acquired_at else excluded.acquired_at end
            where l.holder operator(pg_catalog.=) excluded.holder
               or l.expires_at operator(pg_catalog.<=) excluded.acquired_at
        returning l.holder, l.expires_at into v_holder, v_until;
        if not found then
            select l.holder, l.expires_at into v_holder, v_until
            from scheduler.waker_lease l where l.scope operator(pg_catalog.=) v_scope;
        end if;
    end if;
    return pg_catalog.jsonb_build_object(
        'held', coalesce(v_holder operator(pg_catalog.=) p_holder, false),
        'holder', v_holder,
        'expires_at', v_until,
        'now', v_now);
end
$$;
comment on function scheduler.claim_waker(pg_catalog.text, double precision, pg_catalog.text) is
    'Called by the application''s waker about twice a second: takes or renews its lease (the one '
    'active waker per scope calls wake(), the others stand by), or reports who holds it; '
    'returns {held, holder, expires_at, now}.';

-- A clean stop: p_holder gives up its lease at once, so that a standby takes over at its next
-- try rather than when the lease expires. True when p_holder held it.
create or replace function scheduler.release_waker(p_holder pg_catalog.text,
                                                   p_transition pg_catalog.text default null)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
begin
    delete from scheduler.waker_lease l
    where l.scope operator(pg_catalog.=) coalesce(p_transition, '*')
      and l.holder operator(pg_catalog.=) p_holder;
    return found;
end
$$;
comment on function scheduler.release_waker(pg_catalog.text, pg_catalog.text) is
    'Called by the application''s waker when it stops: gives up its lease (if it holds it) so '
    'that a standby waker takes over at once.';

-- Least privilege (50_grants.sql): nothing new is readable, writable or executable by PUBLIC or
-- the API roles; service_role (Supabase's admin role over RPC, which runs the waker over REST)
-- may call the two functions.
revoke all on scheduler.waker_lease from public;
revoke all on function scheduler.claim_waker(pg_catalog.text, double precision, pg_catalog.text),
    scheduler.release_waker(pg_catalog.text, pg_catalog.text) from public;
do $grants$
declare
    v_role pg_catalog.text;
begin
    foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
        if exists (select 1 from pg_catalog.pg_roles r where r.rolname operator(pg_catalog.=) v_role) then
            execute pg_catalog.format('revoke all on scheduler.waker_lease from %I', v_role);
            execute pg_catalog.format(
                'revoke all on function '
                'scheduler.claim_waker(pg_catalog.text, double precision, pg_catalog.text), '
                'scheduler.release_waker(pg_catalog.text, pg_catalog.text) from %I', v_role);
        end if;
    end loop;
    if exists (select 1 from pg_catalog.pg_roles r where r.rolname operator(pg_catalog.=) 'service_role') then
        grant execute on function
            scheduler.claim_waker(pg_catalog.text, double precision, pg_catalog.text),
            scheduler.release_waker(pg_catalog.text, pg_catalog.text)
        to service_role;
    end if;
end
$grants$;
