"""``scheduler-admin transitions list|add|remove`` (issue 14) over a fake backend of the
contract's shape: what each command passes to the backend and prints, and its errors. The same
commands against real databases are tested in tests/postgres and tests/sqlite."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run, run_json

from scheduler_admin import cli
from scheduler_admin.core import Transition
from scheduler_admin.exceptions import InvalidInput, PermissionDenied, SchedulerError

MEETINGS: Transition = {
    "name": "meetings",
    "table_name": "public.meetings",
    "key_column": "id",
    "time_column": "end_time",
    "state_column": "status",
    "from_states": ["upcoming"],
    "to_state": "done",
    "job_prefix": "meeting-status-",
    "builtin": True,
    "pending_rows": 3,
    "jobs": 3,
    "paused": False,
}
MEMBERSHIPS: Transition = {
    "name": "memberships",
    "table_name": "public.memberships",
    "key_column": "id",
    "time_column": "expires_at",
    "state_column": "status",
    "from_states": ["active", "trial"],
    "to_state": "expired",
    "job_prefix": "memberships-status-",
    "builtin": False,
    "pending_rows": 12,
    "jobs": 11,
    "paused": True,
}
ADDED = {
    "name": "memberships",
    "table": "public.memberships",
    "job_prefix": "memberships-status-",
    "jobs_registered": 4,
    "completed": 1,
}
MEMBERSHIPS_ADD = (
    "transitions",
    "add",
    "memberships",
    "--table",
    "public.memberships",
    "--key",
    "id",
    "--time",
    "expires_at",
    "--state",
    "status",
    "--from",
    "active",
    "--to",
    "expired",
)


class FakeBackend:
    """The three transition methods of the Backend protocol; records each call."""

    def __init__(self) -> None:
        self.rows: list[Transition] = [MEETINGS, MEMBERSHIPS]
        self.added: dict[str, Any] = dict(ADDED)
        self.removed: dict[str, Any] = {"name": "memberships", "jobs_removed": 11}
        self.failure: Exception | None = None
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.closed = 0

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((method, args, kwargs))
        if self.failure is not None:
            raise self.failure

    def transitions(self) -> list[Transition]:
        self._call("transitions")
        return copy.deepcopy(self.rows)

    def add_transition(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self._call("add_transition", name, **kwargs)
        return dict(self.added)

    def remove_transition(self, name: str) -> dict[str, Any]:
        self._call("remove_transition", name)
        return dict(self.removed)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeBackend:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT", "SCHEDULER_JOBSTORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    fake = FakeBackend()
    monkeypatch.setattr(cli, "open_backend", lambda settings: fake)
    return fake


# -- list -----------------------------------------------------------------------------------


def test_list_prints_a_table_with_the_builtin_marked(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "transitions", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "TABLE",
        "KEY",
        "TIME",
        "STATE",
        "FROM",
        "→",
        "TO",
        "JOB",
        "PREFIX",
        "PENDING",
        "JOBS",
        "PAUSED",
    ]
    assert lines[1].split() == [
        "meetings",
        "(builtin)",
        "public.meetings",
        "id",
        "end_time",
        "status",
        "upcoming",
        "→",
        "done",
        "meeting-status-",
        "3",
        "3",
        "no",
    ]
    assert lines[2].split() == [
        "memberships",
        "public.memberships",
        "id",
        "expires_at",
        "status",
        "active,",
        "trial",
        "→",
        "expired",
        "memberships-status-",
        "12",
        "11",
        "yes",  # paused by name
    ]
    assert lines[3:] == ["2 transitions"]
    # columns line up: each cell starts where its header does
    assert lines[0].index("JOB PREFIX") == lines[2].index("memberships-status-")
    assert backend.calls == [("transitions", (), {})] and backend.closed == 1


def test_list_json_is_the_backend_list(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_json(capsys, "transitions", "list") == [MEETINGS, MEMBERSHIPS]


def test_list_without_transitions_says_so(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.rows = []
    code, out, _ = run(capsys, "transitions", "list")
    assert code == 0 and out == "no transitions\n"
    assert run_json(capsys, "transitions", "list") == []


# -- add ------------------------------------------------------------------------------------


def test_add_passes_the_options_and_prints_what_it_registered(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *MEMBERSHIPS_ADD)
    assert code == 0, err
    assert backend.calls == [
        (
            "add_transition",
            ("memberships",),
            {
                "table": "public.memberships",
                "key_column": "id",
                "time_column": "expires_at",
                "state_column": "status",
                "from_states": ["active"],
                "to_state": "expired",
                "job_prefix": None,
            },
        )
    ]
    assert out.splitlines() == [
        "transition memberships registered on public.memberships: active → expired at expires_at",
        "  jobs registered  4 (memberships-status-<id>)",
        "  rows completed   1 (already due)",
    ]
    assert backend.closed == 1


def test_add_takes_several_from_states_and_a_prefix(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.added["job_prefix"] = "member-"
    code, out, err = run(
        capsys,
        *MEMBERSHIPS_ADD,
        "--from",
        "trial",
        "--from",
        "active",  # repeated: counts once
        "--prefix",
        "member-",
    )
    assert code == 0, err
    kwargs = backend.calls[0][2]
    assert kwargs["from_states"] == ["active", "trial"] and kwargs["job_prefix"] == "member-"
    assert "active, trial → expired" in out and "(member-<id>)" in out


def test_add_json_is_the_backend_result(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_json(capsys, *MEMBERSHIPS_ADD) == ADDED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--from", "expired"), "Invalid value for '--to': 'expired' is also a --from state"),
        (("--to", " "), "Invalid value for '--to': a state cannot be blank"),
        (("--from", ""), "Invalid value for '--from': a state cannot be blank"),
    ],
    ids=["to-among-from", "blank-to", "blank-from"],
)
def test_add_usage_errors_exit_2_before_any_connection(
    backend: FakeBackend,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    message: str,
) -> None:
    code, out, err = run(capsys, *MEMBERSHIPS_ADD, *change)
    assert code == 2 and out == ""
    assert f"Error: {message}" in err and "Traceback" not in err
    assert backend.calls == [] and backend.closed == 0


@pytest.mark.parametrize("missing", ["--table", "--key", "--time", "--state", "--from", "--to"])
def test_add_without_a_required_option_is_a_usage_error(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    args = list(MEMBERSHIPS_ADD)
    at = args.index(missing)
    del args[at : at + 2]
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert f"Error: Missing option '{missing}'" in err
    assert backend.calls == []


def test_add_without_a_name_is_a_usage_error(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a for a in MEMBERSHIPS_ADD if a != "memberships"]
    code, _, err = run(capsys, *args)
    assert code == 2 and "Missing argument 'NAME'" in err
    assert backend.calls == []


def test_add_refused_by_the_backend_is_an_error_with_its_hint(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    # the table and column rules are the backend's: the CLI only shows what it says
    backend.failure = PermissionDenied(
        "public.memberships belongs to app, not to the owner of public.meetings (scheduler)",
        hint="alter table public.memberships owner to scheduler;",
    )
    for json_flag in ((), ("--json",)):
        code, out, err = run(capsys, *json_flag, *MEMBERSHIPS_ADD)
        assert code == 1 and out == ""
        assert err.splitlines() == [
            "Error: public.memberships belongs to app, not to the owner of public.meetings "
            "(scheduler)",
            "Hint: alter table public.memberships owner to scheduler;",
        ]
    assert backend.closed == 2  # closed after a failure too


# -- remove ---------------------------------------------------------------------------------


def test_remove_prints_the_jobs_removed(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "transitions", "remove", "memberships")
    assert code == 0, err
    assert backend.calls == [("remove_transition", ("memberships",), {})]
    assert out == "transition memberships removed: 11 jobs removed, rows unchanged\n"
    backend.removed["jobs_removed"] = 1
    _, out, _ = run(capsys, "transitions", "remove", "memberships")
    assert out == "transition memberships removed: 1 job removed, rows unchanged\n"


def test_remove_json_is_the_backend_result(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_json(capsys, "transitions", "remove", "memberships") == {
        "name": "memberships",
        "jobs_removed": 11,
    }


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        (
            "meetings",
            InvalidInput(
                "transition meetings is builtin and cannot be removed",
                hint="The migrations own it: `alembic downgrade base` removes the scheduler.",
            ),
        ),
        ("nosuch", SchedulerError("no transition named nosuch")),
    ],
    ids=["builtin", "unknown"],
)
def test_remove_refused_is_an_error(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str], name: str, failure: SchedulerError
) -> None:
    backend.failure = failure
    code, out, err = run(capsys, "transitions", "remove", name)
    assert code == 1 and out == ""
    assert err.splitlines()[0] == f"Error: {failure.message}"
    assert ("Hint: " in err) == (failure.hint is not None)
    assert "Traceback" not in err


def test_remove_without_a_name_is_a_usage_error(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "transitions", "remove")
    assert code == 2 and "Missing argument 'NAME'" in err
    assert backend.calls == []


def test_the_group_lists_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "transitions", "--help")
    assert code == 0
    commands = out.split("Commands:")[1].split()
    assert {"add", "list", "remove"} <= set(commands)
