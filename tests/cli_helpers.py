"""Run the scheduler-admin CLI in-process and capture its exit code and output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scheduler_admin.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, "--json", *args)
    assert code == 0, err
    return json.loads(out)
