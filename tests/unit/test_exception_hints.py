"""Every error carries a hint (what to do), as the documentation promises (issue 24, item 6)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import scheduler_admin
from scheduler_admin import exceptions
from scheduler_admin.exceptions import MeetingNotFound, SchedulerError

PACKAGE = Path(scheduler_admin.__file__).parent
CLASSES = sorted(
    (
        cls
        for cls in vars(exceptions).values()
        if inspect.isclass(cls) and issubclass(cls, SchedulerError)
    ),
    key=lambda cls: cls.__name__,
)
NAMES = {cls.__name__ for cls in CLASSES}


def raised_as_the_code_raises_it(cls: type[SchedulerError]) -> SchedulerError:
    if cls is MeetingNotFound:
        return MeetingNotFound("8f14e45f-ceea-467f-a0e6-2b2c5f4e7c55")
    return cls("something went wrong")


def calls_of_our_errors() -> list[tuple[str, int, str, ast.Call]]:
    """Every call in the package of a class of exceptions.py (the raise sites and the
    translations that build an error to raise)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in NAMES:
                found.append((str(path.relative_to(PACKAGE)), node.lineno, name, node))
    return found


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_has_a_hint(cls: type[SchedulerError]) -> None:
    """Raised without a hint of its own, an error still says what to do."""
    error = raised_as_the_code_raises_it(cls)
    assert error.hint and error.hint.strip()
    assert error.hint != error.message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_a_hint_of_the_raiser_wins(cls: type[SchedulerError]) -> None:
    if cls is MeetingNotFound:
        error: SchedulerError = MeetingNotFound("x", hint="Meeting ids are UUIDs.")
    else:
        error = cls("bad", hint="Do this.")
    assert error.hint in ("Meeting ids are UUIDs.", "Do this.")
    # no hint given (None, as a server that sent none): the class's
    assert cls is MeetingNotFound or cls("bad", hint=None).hint == cls.default_hint


def test_meeting_not_found_says_how_to_check_the_id() -> None:
    error = MeetingNotFound("abc")
    assert "select id, status, end_time from meetings where id = 'abc'" in error.hint
    assert "scheduler-admin list-jobs" in error.hint


def test_every_raise_site_raises_an_error_with_a_hint() -> None:
    """Walks every call of an exception class in the package: each is a class tested above
    (so it has a hint), and none passes an empty hint."""
    calls = calls_of_our_errors()
    assert {name for *_, name, _ in calls} >= {"ConfigurationError", "MeetingNotFound"}
    empty = [
        f"{path}:{line}"
        for path, line, _, call in calls
        for keyword in call.keywords
        if keyword.arg == "hint"
        and isinstance(keyword.value, ast.Constant)
        and not (keyword.value.value or "").strip()
    ]
    assert empty == []
    raised = {name for *_, name, _ in calls}
    assert raised <= NAMES


def test_every_error_class_of_the_package_is_in_exceptions_py() -> None:
    """So that the classes walked above are all there are."""
    elsewhere = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "exceptions.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and any(getattr(base, "id", getattr(base, "attr", None)) in NAMES for base in node.bases)
    ]
    assert elsewhere == []


def test_the_cli_prints_the_hint_of_an_error_raised_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler_admin import cli

    def fail(*args: object, **kwargs: object) -> None:
        raise MeetingNotFound("abc")

    monkeypatch.setattr(cli.config, "resolve", fail)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "list-jobs"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "Error: no meeting with id abc" in err
    assert "Hint: Check the id" in err
