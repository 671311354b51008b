"""The job commands of the SQLite backend: parsing, and the run messages that say what a run
did."""

from __future__ import annotations

import pytest

from scheduler_admin.sqlite.commands import completion_message
from scheduler_admin.sqlite.functions import (
    Completion,
    command_job,
    job_command,
    parse_complete_command,
)


@pytest.mark.parametrize("meeting_id", ["abc", "it's", "''", "a'b'c", ""])
def test_job_command_round_trip(meeting_id: str) -> None:
    command = job_command(meeting_id)
    assert parse_complete_command(command) == meeting_id
    assert command_job(command) == f"meeting-status-{meeting_id}"


@pytest.mark.parametrize(
    "command", [None, "", "vacuum", "complete_meeting('a'b')", "complete_meeting(x)"]
)
def test_other_commands_are_not_ours(command: str | None) -> None:
    assert parse_complete_command(command) is None
    assert command_job(command) is None


def test_reconcile_command_names_the_reconcile_job() -> None:
    assert command_job("reconcile()") == "meeting-status-reconcile"


@pytest.mark.parametrize(
    ("done", "message"),
    [
        (Completion(1, True, "done", False, False), "completed 1 meeting (this one included)"),
        (Completion(3, True, "done", False, False), "completed 3 meetings (this one included)"),
        (Completion(0, False, "upcoming", False, True), "meeting not due yet: nothing done"),
        (
            Completion(2, False, "upcoming", False, True),
            "meeting not due yet: completed 2 other meetings",
        ),
        (Completion(0, False, "done", True, False), "meeting already done; job removed"),
        (Completion(0, False, "cancelled", True, False), "meeting already cancelled; job removed"),
        (
            Completion(1, False, None, True, False),
            "meeting gone; job removed; completed 1 other meeting",
        ),
        (Completion(0, False, "done", False, False), "meeting already done; no job left to remove"),
        # a table with its own words: pending is whatever scheduler_statuses says
        (Completion(0, False, "scheduled", False, True), "meeting not due yet: nothing done"),
        (
            Completion(0, False, "in_progress", True, False),
            "meeting already in_progress; job removed",
        ),
    ],
)
def test_completion_messages(done: Completion, message: str) -> None:
    assert completion_message(done) == message
