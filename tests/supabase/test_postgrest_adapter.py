"""The PostgREST stand-in (postgrest_adapter.py) keeps the promises of its docstring: HTTP status
codes from PostgREST's documented table, 300 PGRST203 for an ambiguous overload, the API roles'
statement timeouts as Supabase sets them, the JWT's claims in ``request.jwt.claims`` (and
``auth.uid()`` reading them, as well as the older ``request.jwt.claim.sub``); and a call of ours
over REST that outlasts authenticator's statement timeout fails with 57014, as on Supabase."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from postgrest_adapter import PostgrestAdapter, http_status
from supabase_shape import ANON_KEY, SERVICE_KEY, SupabaseShape

from scheduler_admin.backends.supabase import SupabaseBackend
from scheduler_admin.exceptions import DatabaseError

USER = uuid.UUID("00000000-0000-4000-8000-00000000a11c")
USER_KEY = "test-authenticated-user-key-0123456789"
PROBE_SQL = """
create schema api_probe;
grant usage on schema api_probe to anon, authenticated, service_role;
-- what a request sees: its role, its statement timeout, its claims and auth.uid()
create function api_probe.whoami() returns json language sql stable as $$
    select json_build_object(
        'role', current_user,
        'statement_timeout', current_setting('statement_timeout'),
        'claims', current_setting('request.jwt.claims', true)::json,
        'uid', auth.uid(),
        'method', current_setting('request.method', true),
        'path', current_setting('request.path', true))
$$;
create function api_probe.raise_sqlstate(code text) returns void language plpgsql as $$
begin
    raise exception 'raised %', code using errcode = code;
end
$$;
create function api_probe.nap(seconds double precision) returns boolean language plpgsql as $$
begin
    perform pg_sleep(seconds);
    return true;
end
$$;
-- two overloads with the same argument name: PostgREST cannot choose between them
create function api_probe.pick(a integer) returns text language sql as $$ select 'integer' $$;
create function api_probe.pick(a text) returns text language sql as $$ select 'text' $$;
grant execute on all functions in schema api_probe to anon, authenticated, service_role;
"""


def post(
    adapter: PostgrestAdapter, key: str, function: str, body: dict[str, Any]
) -> httpx.Response:
    return httpx.post(
        f"{adapter.url}/rest/v1/rpc/{function}",
        json=body,
        headers={
            "apikey": key,
            "Authorization": f"Bearer {key}",
            "Content-Profile": adapter.schemas[0],
        },
        timeout=30,
    )


@pytest.fixture
def probe(supa: SupabaseShape) -> Iterator[PostgrestAdapter]:
    """The stand-in in front of a schema of probe functions, with a key for each API role (the
    authenticated one a user's JWT with a subject)."""
    with supa.superuser() as su:
        su.execute(PROBE_SQL)
    adapter = PostgrestAdapter(
        supa.dsn("authenticator"),
        keys={
            SERVICE_KEY: "service_role",
            ANON_KEY: "anon",
            USER_KEY: {"role": "authenticated", "sub": str(USER), "aud": "authenticated"},
        },
        schemas=("api_probe",),
    )
    try:
        with adapter.running():
            yield adapter
    finally:
        with supa.superuser() as su:
            su.execute("drop schema api_probe cascade")


# PostgREST's documented table (docs.postgrest.org, references/errors, "HTTP Status Codes"),
# one code of each row, and codes it does not list (400).
DOCUMENTED = [
    ("08006", 503), ("09000", 500), ("0L000", 403), ("0LP01", 403), ("0P000", 403),
    ("23503", 409), ("23505", 409), ("25006", 405), ("25001", 500), ("28000", 403),
    ("28P01", 403), ("2D000", 500), ("38000", 500), ("39000", 500), ("3B000", 500),
    ("40001", 500), ("40P01", 500), ("53400", 500), ("53100", 503), ("53300", 503),
    ("54001", 500), ("55P03", 500), ("57014", 500), ("58030", 500), ("F0000", 500),
    ("HV000", 500), ("P0001", 400), ("P0002", 500), ("P0004", 500), ("XX000", 500),
    ("42883", 404), ("42P01", 404), ("42P17", 500), ("PT402", 402), ("PT418", 418),
    # not listed: 400
    ("22012", 400), ("22023", 400), ("23502", 400), ("23514", 400), ("42703", 400),
    ("42P13", 400), ("0A000", 400), ("44000", 400),
]  # fmt: skip


@pytest.mark.parametrize(("sqlstate", "status"), DOCUMENTED)
def test_http_status_is_postgrest_s_documented_table(sqlstate: str, status: int) -> None:
    assert http_status(sqlstate, authenticated=True) == status
    assert http_status(sqlstate, authenticated=False) == status


def test_insufficient_privilege_is_403_for_a_role_and_401_for_anon() -> None:
    assert http_status("42501", authenticated=True) == 403
    assert http_status("42501", authenticated=False) == 401


def test_raised_sqlstates_come_back_with_postgrest_s_status(probe: PostgrestAdapter) -> None:
    """Errors raised in the database, over HTTP: the status of the table, the SQLSTATE as
    ``code``, the message as PostgREST forwards it."""
    for code in ("0L000", "0P000", "28000", "25006", "53400", "42P17", "57014", "22012", "PT402"):
        response = post(probe, SERVICE_KEY, "raise_sqlstate", {"code": code})
        assert response.status_code == http_status(code, authenticated=True), (code, response)
        assert response.json() == {
            "code": code,
            "message": f"raised {code}",
            "details": None,
            "hint": None,
        }
    for key, status in ((SERVICE_KEY, 403), (USER_KEY, 403), (ANON_KEY, 401)):
        response = post(probe, key, "raise_sqlstate", {"code": "42501"})
        assert (response.status_code, response.json()["code"]) == (status, "42501")


def test_an_ambiguous_overload_is_300_pgrst203(probe: PostgrestAdapter) -> None:
    response = post(probe, SERVICE_KEY, "pick", {"a": "1"})
    assert response.status_code == 300
    body = response.json()
    assert body["code"] == "PGRST203"
    assert body["message"].startswith("Could not choose the best candidate function between: ")
    assert "api_probe.pick(a => integer)" in body["message"]
    assert "api_probe.pick(a => text)" in body["message"]
    assert "overloading can be resolved" in body["hint"]
    # no match at all stays 404 PGRST202
    response = post(probe, SERVICE_KEY, "pick", {"b": "1"})
    assert (response.status_code, response.json()["code"]) == (404, "PGRST202")


def test_each_role_runs_with_its_claims_and_supabase_s_statement_timeout(
    probe: PostgrestAdapter,
) -> None:
    """anon 3 s and authenticated 8 s (their own settings, applied per request); service_role
    has none of its own and runs with authenticator's 8 s. The claims are request.jwt.claims,
    and auth.uid() is the subject of the user's JWT."""
    seen = {key: post(probe, key, "whoami", {}).json() for key in (ANON_KEY, USER_KEY, SERVICE_KEY)}
    assert {k: (v["role"], v["statement_timeout"]) for k, v in seen.items()} == {
        ANON_KEY: ("anon", "3s"),
        USER_KEY: ("authenticated", "8s"),
        SERVICE_KEY: ("service_role", "8s"),
    }
    assert seen[USER_KEY]["claims"] == {
        "role": "authenticated",
        "sub": str(USER),
        "aud": "authenticated",
    }
    assert seen[USER_KEY]["uid"] == str(USER)
    assert seen[ANON_KEY]["claims"] == {"role": "anon"}
    assert seen[ANON_KEY]["uid"] is None
    assert (seen[USER_KEY]["method"], seen[USER_KEY]["path"]) == ("POST", "/rpc/whoami")


def test_auth_uid_reads_the_claims_json_and_the_older_claim_sub(supa: SupabaseShape) -> None:
    """Current PostgREST sets request.jwt.claims; before v10 it set request.jwt.claim.sub.
    auth.uid() reads either, and row-level security follows it."""
    with supa.superuser() as su:
        su.execute(
            "insert into meetings (title, end_time, owner_id) values "
            "('mine', now() + interval '40 days', %s), ('theirs', now() + interval '40 days', %s)",
            (USER, uuid.uuid4()),
        )
    for legacy in (False, True):
        with supa.as_role("authenticated", USER, legacy_claims=legacy) as conn:
            assert conn.execute("select auth.uid()").fetchone() == (USER,)
            assert conn.execute("select title from meetings").fetchall() == [("mine",)]
            setting = "request.jwt.claim.sub" if legacy else "request.jwt.claims"
            other = "request.jwt.claims" if legacy else "request.jwt.claim.sub"
            assert conn.execute("select current_setting(%s, true)", (setting,)).fetchone() != (
                None,
            )
            assert conn.execute("select current_setting(%s, true)", (other,)).fetchone() in (
                (None,),
                ("",),
            )


# The timeouts are the API roles' settings, the same in both grant variants (which differ only
# in the migration role's rights on cron.job): the waits run in one.
ONE_VARIANT = pytest.mark.parametrize("supabase_cluster", ["platform"], indirect=True)


@ONE_VARIANT
def test_anon_s_statement_timeout_cancels_a_long_request(probe: PostgrestAdapter) -> None:
    """A request as anon that runs past anon's 3 s is cancelled by the server: 500, 57014."""
    started = time.monotonic()
    response = post(probe, ANON_KEY, "nap", {"seconds": 5})
    elapsed = time.monotonic() - started
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "57014"
    assert "statement timeout" in response.json()["message"]
    assert 3 <= elapsed < 5, elapsed  # cancelled at anon's 3 s, before the nap's 5 s


@ONE_VARIANT
def test_a_call_of_ours_past_authenticator_s_timeout_fails_with_57014(
    supa: SupabaseShape, rest: PostgrestAdapter
) -> None:
    """scheduler.list_jobs() over REST as service_role, waiting on a lock a migration holds on
    meetings: the server cancels it at authenticator's 8 s (service_role has no timeout of its
    own), PostgREST answers 500 with 57014, and the backend reports the server's words."""
    outcome: dict[str, Any] = {}

    def call_over_http() -> None:
        outcome["response"] = post(rest, SERVICE_KEY, "list_jobs", {})

    with supa.superuser() as su, su.transaction():
        su.execute("lock table public.meetings in access exclusive mode")
        raw = threading.Thread(target=call_over_http)
        started = time.monotonic()
        raw.start()
        backend = SupabaseBackend(rest.url, SERVICE_KEY)
        try:
            with pytest.raises(DatabaseError) as info:
                backend.list_jobs()
        finally:
            backend.close()
        elapsed = time.monotonic() - started
        raw.join(timeout=30)
    assert "canceling statement due to statement timeout" in str(info.value)
    assert "57014" in str(info.value)
    assert 8 <= elapsed < 30, elapsed  # the server's 8 s, not the client's 30 s
    response = outcome["response"]
    assert response.status_code == 500
    assert response.json()["code"] == "57014"
