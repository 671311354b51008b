"""Passwords never reach output, whatever characters they hold.

The messages checked here are real ones: libpq's parser (through psycopg), psycopg's connection
attempts against a closed port on 127.0.0.1, and the configuration's own validation.
"""

from __future__ import annotations

import io
import logging
import re

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from secret_helpers import NAMED, SPECIALS, generated_passwords, leaked, password_of, url_forms

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.config import check_postgres_url, mask_url, psycopg_conninfo, resolve
from scheduler_admin.exceptions import ConfigurationError, SchedulerError
from scheduler_admin.redact import RedactingFilter, Redactor, redact, secrets_of

PASSWORDS = NAMED + generated_passwords(120)
MARKERS = ["Bc2Qd", "Fg3Qh", "Jk4Ql", "Mn5Qp", "Rs6Qt", "Vw7Qx"]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p/a#s?w@rd%zz@host/db", "postgresql://u:***@host/db"),
        ("postgresql://u:p w@host/db", "postgresql://u:***@host/db"),
        ("postgresql://u:pa@ss@host:5432/db", "postgresql://u:***@host:5432/db"),
        ("postgresql://u:pw@[::1/db", "postgresql://u:***@[::1/db"),
        ("postgresql://u:pw@[zz]:5432/db", "postgresql://u:***@[zz]:5432/db"),
        ("postgresql://:pw@host/db", "postgresql://:***@host/db"),
        ("postgresql://u@h1:5432,h2:5433/db", "postgresql://u@h1:5432,h2:5433/db"),
        # a forgotten '@': what would be the port may be the password
        ("postgresql://postgres:secret", "postgresql://postgres:***"),
        # secret parameters, with an encoded key, among harmless ones
        (
            "postgresql://u@h/db?sslmode=require&pass%77ord=x&sslpassword=y&application_name=a",
            "postgresql://u@h/db?sslmode=require&pass%77ord=***&sslpassword=***&application_name=a",
        ),
        # an unknown parameter, or one without '=', could be a piece of a password: masked
        (
            "postgresql://u@h/db?pasword=typo&sslmode=require",
            "postgresql://u@h/db?***&sslmode=require",
        ),
        ("postgresql://u@h/db?password=a&b&port=1", "postgresql://u@h/db?password=***&***&port=1"),
        # an '@' in a query password: nothing of it stays
        ("postgresql://host/db?password=se@cret", "postgresql://***"),
        # conninfo: quoted value with spaces and escaped quotes, unquoted with an escape
        (
            "host=h password='a b\\' c' user=u",
            "host=h password=*** user=u",
        ),
        ("host=h password=a\\ b user=u", "host=h password=*** user=u"),
        ("host=h sslpassword = s user=u", "host=h sslpassword = *** user=u"),
        # from a parse error on, everything is masked
        ("host=h password='unterminated user=u", "host=h password=***"),
        ("host=h password=se cret user=u", "host=h password=*** ***"),
        # not a URL, not a conninfo: nothing is shown
        ("postgresql:/u:pw@h/db", "***"),
        ("u:pw@host://db", "***"),
        ("sqlite:///scheduler_jobs.db", "sqlite:///scheduler_jobs.db"),
        ("sqlite:///tmp/x.db?mode=ro", "sqlite:///tmp/x.db?mode=ro"),
        ("", ""),
    ],
)
def test_mask_url_examples(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def libpq_message(url: str) -> str:
    """libpq's own complaint about ``url`` ("" when it parses it)."""
    try:
        conninfo_to_dict(psycopg_conninfo(url))
    except (psycopg.Error, UnicodeDecodeError) as exc:  # psycopg decodes what libpq read
        return str(exc)
    return ""


def assert_nothing_leaks(password: str, markers: list[str]) -> None:
    for url in url_forms(password):
        redactor = Redactor()
        redactor.add_url(url)
        shown = {"mask_url": mask_url(url), "libpq": redactor(libpq_message(url))}
        try:
            shown["settings"] = resolve(url, {}).display
        except ConfigurationError as exc:
            shown["settings"] = f"{exc.message}\n{exc.hint}"
        for where, text in shown.items():
            assert not leaked(markers, text), (where, url, text)


@pytest.mark.parametrize(("password", "markers"), PASSWORDS, ids=lambda v: repr(v)[:40])
def test_no_piece_of_the_password_is_shown(password: str, markers: list[str]) -> None:
    assert_nothing_leaks(password, markers)


@settings(max_examples=300, deadline=None, database=None)
@given(
    markers=st.lists(st.sampled_from(MARKERS), min_size=1, max_size=5, unique=True),
    separators=st.lists(st.sampled_from(["", *SPECIALS]), min_size=6, max_size=6),
)
def test_no_piece_of_any_password_is_shown(markers: list[str], separators: list[str]) -> None:
    assert_nothing_leaks(password_of(markers, separators), markers)


@pytest.mark.parametrize(("password", "markers"), NAMED + generated_passwords(12, seed=7))
def test_connection_errors_never_show_the_password(password: str, markers: list[str]) -> None:
    """The backend's errors, from psycopg's real attempts (a closed port, a host name made of
    a piece of the password), show no piece of it."""
    for url in url_forms(password):
        backend = PostgresBackend(url, connect_timeout=2)
        with pytest.raises(SchedulerError) as caught:
            backend.list_jobs()
        text = f"{caught.value.message}\n{caught.value.hint}"
        assert not leaked(markers, text), (url, text)
        assert "cannot connect to" in text or "invalid database URL" in text


def test_secrets_include_what_libpq_reads_out_of_the_password() -> None:
    # libpq stops at the first '/': host 'app', port 'Kb2Qx', database 'Mr3Qz@127.0.0.1:1/db'
    url = "postgresql://app:Kb2Qx/Mr3Qz@127.0.0.1:1/db"
    secrets = secrets_of(url)
    assert {"Kb2Qx/Mr3Qz", "Kb2Qx", "Mr3Qz@127.0.0.1:1/db"} <= secrets
    assert "app" not in secrets  # shown as the user, it is no secret


def test_redactor_masks_quoted_pieces_short_secrets_and_url_shapes() -> None:
    redactor = Redactor()
    redactor.add_url("postgresql://app:Pt5Qv@Rd6Qs@127.0.0.1:1/db")
    # a piece of the password quoted by psycopg, short secrets only where they stand alone
    assert redactor("failed to resolve host 'Rd6Qs@127.0.0.1'") == "failed to resolve host '***'"
    short = Redactor(["pw"])
    assert short("postgresql://u:pw@h pw; pwned") == "postgresql://u:***@h ***; pwned"
    # secrets of nobody we know: URL passwords and password= values are still masked
    assert redact("dsn postgresql://x:y@h/db and password='a b' left") == (
        "dsn postgresql://x:***@h/db and password=*** left"
    )
    # the forms a secret takes in repr() and JSON
    quoted = Redactor(['a"b\\c'])
    assert quoted(repr('a"b\\c') + " " + '"a\\"b\\\\c"') == "'***' \"***\""


def test_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    url = "postgresql://app:Gh9Qm@Jk2Ql@127.0.0.1:1/db"
    redactor = Redactor()
    redactor.add_url(url)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting to %s", url)
        try:
            raise ValueError(f"cannot use {url!r}")
        except ValueError:
            logger.exception("failed: %r", {"url": url})
        logger.warning("bad format %s %s", url)  # a broken call still logs, redacted
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and "ValueError" in text
    assert not leaked(["Gh9Qm", "Jk2Ql"], text), text
    assert "postgresql://app:***@127.0.0.1:1/db" in text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw@[::1/db", 'matching "]" in IPv6 host address'),
        ("postgresql://u:pw@[zz]:5432/db", "'zz' in brackets is not an IPv6 address"),
        ("postgresql://u:pa@ss@h/db", "the host name contains @"),
        ("postgresql://u:p/w@h/db", "the port is not a number"),
        ("postgresql://u:p w@h/db", "unexpected spaces found"),
        ("postgresql://u:p%zz@h/db", "invalid percent-encoded token"),
        ("postgresql://u:p%BCw@h/db", "a percent-encoded part is not UTF-8"),
    ],
)
def test_malformed_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_postgres_url(url, "DATABASE_URL")
    assert caught.value.message.startswith(
        f"invalid database URL {mask_url(url)} (from DATABASE_URL)"
    )
    assert message in caught.value.message
    assert caught.value.hint
    secret = re.escape(url.split(":", 2)[2].rsplit("@", 1)[0])
    assert not re.search(rf"(?<![\w%]){secret}(?![\w%])", str(caught.value))


@pytest.mark.parametrize(
    ("url", "parts", "shown"),
    [
        (
            "postgresql://u:p%40%2F%23%3F%20%25w@h:5432/db?sslmode=require",
            {"user": "u", "password": "p@/#? %w", "host": "h", "port": "5432", "dbname": "db",
             "sslmode": "require"},
            "postgresql://u:***@h:5432/db?sslmode=require",
        ),
        (
            "postgresql+psycopg://u@[::1]:5432/db",
            {"user": "u", "host": "::1", "port": "5432", "dbname": "db"},
            "postgresql+psycopg://u@[::1]:5432/db",
        ),
        (
            "postgresql://u@h1:5432,h2:5433/db",
            {"user": "u", "host": "h1,h2", "port": "5432,5433", "dbname": "db"},
            "postgresql://u@h1:5432,h2:5433/db",
        ),
        (
            "postgresql:///db?host=/var/run/postgresql",
            {"host": "/var/run/postgresql", "dbname": "db"},
            "postgresql:///db?host=/var/run/postgresql",
        ),
        (
            "host=h port=5432 user=u password='a b' dbname=db",
            {"user": "u", "password": "a b", "host": "h", "port": "5432", "dbname": "db"},
            "host=h port=5432 user=u password=*** dbname=db",
        ),
    ],
)  # fmt: skip
def test_valid_urls_pass_the_check_and_connect_with_what_they_say(
    url: str, parts: dict[str, str], shown: str
) -> None:
    """A valid URL passes the check (no ConfigurationError), libpq reads from the conninfo the
    backends connect with exactly the parts the URL spells (a +driver dropped, percent-decoded),
    and it is shown with the password masked and nothing else changed."""
    check_postgres_url(url, "--database-url")
    assert conninfo_to_dict(psycopg_conninfo(url)) == parts
    assert mask_url(url) == shown
