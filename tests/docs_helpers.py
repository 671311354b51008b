"""The documentation's examples as tests run them: a section of a page of ``docs/`` by its heading,
its fenced code blocks, and the commands of a ``console`` (lines after ``$ ``) or ``sh`` block,
split as a shell would. A test runs an example where the site shows it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def section(page: str, title: str) -> str:
    """The text of ``page`` (a path from the repository's root, ``docs/webhooks.md``) under the
    heading ``title`` (any level), up to the next heading of the same or a higher level (a line
    starting with ``#`` inside a fenced code block is no heading)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    match = re.search(rf"^(#+) {re.escape(title)}\n", text, re.MULTILINE)
    assert match is not None, f"{page} has no heading {title!r}"
    level = len(match.group(1))
    heading = re.compile(rf"#{{1,{level}}} ")
    fenced = False
    offset = match.end()
    for line in text[match.end() :].splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and heading.match(line):
            return text[match.end() : offset]
        offset += len(line)
    return text[match.end() :]


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in ``text``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def commands(block: str, *, console: bool) -> list[list[str]]:
    """The commands of a block: in a console block only those after a ``$ `` prompt (the rest is
    output); a trailing backslash continues a command, as does an open quote."""
    found: list[list[str]] = []
    pending: str | None = None
    for line in block.splitlines():
        if pending is None:
            if console and not line.startswith("$ "):
                continue
            pending = line[2:] if console else line
        else:
            pending += "\n" + line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            found.append(shlex.split(pending))
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        pending = None
    assert pending is None, f"an unfinished command: {pending!r}"
    return found
