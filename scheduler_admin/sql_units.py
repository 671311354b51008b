"""Revisions as deltas: the statements of a frozen SQL file, and the markers that stand for the
definitions a revision left unchanged.

A released revision's file holds only what it changes. Where the full file once repeated a
definition that an earlier revision already holds, word for word (a function with its leading
comment and its ``comment on function``; on SQLite a view or a trigger with the ``drop … if
exists`` before it), the delta has one line instead::

    -- unchanged since 0003: function scheduler.complete_meeting(p_meeting_id pg_catalog.uuid)

A ``drop function`` followed by the same function created again as it was is a marker too
(neither needs to run). Applying the delta runs what changed; a marker is a comment, so it runs
nothing. When a downgrade re-applies an earlier file (to bring back what that revision had), or a
revision's inverse names the definition to restore (``scripts/next_delta.py`` writes such
markers), ``expand()`` puts each marker's definition back from the revision it names, giving the
file as it was released (a unit test pins those texts by their checksums).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

MARKER = re.compile(r"^-- unchanged since (\d{4}): (.+)$", re.M)

_FUNCTION = re.compile(r"create\s+(?:or\s+replace\s+)?function\s+([\w.\"]+)\s*\(", re.I)
_COMMENT = re.compile(r"comment\s+on\s+function\s+([\w.\"]+)\s*\(", re.I)
_VIEW = re.compile(r"(?:create|drop)\s+view\s+(?:if\s+(?:not\s+)?exists\s+)?([\w.\"]+)", re.I)
_TRIGGER = re.compile(r"(?:create|drop)\s+trigger\s+(?:if\s+(?:not\s+)?exists\s+)?([\w.\"]+)", re.I)
_DROP_FUNCTION = re.compile(r"drop\s+function\s+(?:if\s+exists\s+)?([\w.\"]+)", re.I)


@dataclass
class Unit:
    """One definition (or one other statement) of a file, with the comment lines above it."""

    text: str
    # "function scheduler.f(<arguments>)", "drop function scheduler.f(<types>)", "view v",
    # "trigger t"
    key: str | None = None
    drops: str | None = None  # the function name a "drop function" statement removes


def statements(text: str) -> list[str]:
    """The file cut after each top-level ``;`` and the rest of its line; comments and blank lines
    between statements go with the statement that follows. Joined, they give the text back."""
    out: list[str] = []
    start = i = 0
    n = len(text)
    depth = 0  # SQLite's begin … end of a trigger body
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c in "'\"":
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_]\w*)?\$", text[i:])
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
                continue
        if c.isalpha() and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r"\w+", text[i:])
            assert m is not None
            word = m.group(0).lower()
            if word in ("begin", "case"):
                depth += 1
            elif word == "end" and depth:
                depth -= 1
            i += len(word)
            continue
        if c == ";" and depth == 0:
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            out.append(text[start:i])
            start = i
            continue
        i += 1
    if start < n:
        out.append(text[start:])
    return out


def _code(statement: str) -> str:
    """The statement without the comment lines and blank lines above it."""
    lines = statement.splitlines(keepends=True)
    k = 0
    while k < len(lines) and (not lines[k].strip() or lines[k].lstrip().startswith("--")):
        k += 1
    return "".join(lines[k:])


def _arguments(code: str, open_paren: int) -> str:
    depth = 0
    for j in range(open_paren, len(code)):
        if code[j] == "(":
            depth += 1
        elif code[j] == ")":
            depth -= 1
            if depth == 0:
                return " ".join(code[open_paren + 1 : j].split())
    return ""


def units(text: str) -> list[Unit]:
    """The definitions of a file: a function with the ``comment on function`` statements that
    follow it; a view or trigger with the ``drop`` of the same name just before it; every other
    statement on its own, without a key."""
    out: list[Unit] = []
    for whole in statements(text):
        # the markers among the comment lines above a statement stand for units of their own
        pos = 0
        for found in MARKER.finditer(whole):
            if _code(whole[: found.start()]) != "":
                break
            end = min(found.end() + 1, len(whole))
            out.append(Unit(whole[pos:end], found.group(2)))
            pos = end
        statement = whole[pos:]
        if not statement:
            continue
        code = _code(statement)
        if function := _FUNCTION.match(code):
            key = f"function {function.group(1)}({_arguments(code, function.end() - 1)})"
            out.append(Unit(statement, key))
            continue
        if (
            (comment := _COMMENT.match(code))
            and out
            and out[-1].key is not None
            and not MARKER.match(out[-1].text.lstrip("\n"))
        ):
            previous = out[-1].key
            if previous.startswith(f"function {comment.group(1)}("):
                out[-1].text += statement
                continue
        for kind, pattern in (("view", _VIEW), ("trigger", _TRIGGER)):
            if named := pattern.match(code):
                key = f"{kind} {named.group(1)}"
                last = out[-1] if out else None
                if (
                    code.lower().startswith("create")
                    and last is not None
                    and last.key == key
                    and _code(last.text).lower().startswith("drop")
                ):
                    last.text += statement
                else:
                    out.append(Unit(statement, key))
                break
        else:
            if drop := _DROP_FUNCTION.match(code):
                key = f"drop function {drop.group(1)}({_arguments(code, code.find('('))})"
                out.append(Unit(statement, key, drop.group(1)))
            else:
                out.append(Unit(statement))
    return out


_TYPE_WORDS = {"double", "timestamp", "time", "character", "bit", "interval", "national"}


def _types(arguments: str) -> list[str]:
    """The argument types of an argument list (names, modes and defaults left out)."""
    out = []
    depth, part, parts = 0, "", []
    for c in arguments:
        depth += c == "("
        depth -= c == ")"
        if c == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += c
    if part.strip():
        parts.append(part)
    for raw in parts:
        text = re.split(r"\s+default\s+|\s*=\s*", raw.strip(), maxsplit=1, flags=re.I)[0]
        tokens = text.split()
        if tokens and tokens[0].lower() == "out":
            continue  # not part of the signature
        if tokens and tokens[0].lower() in ("in", "inout", "variadic"):
            tokens = tokens[1:]
        if len(tokens) >= 2 and tokens[0].lower() not in _TYPE_WORDS:
            tokens = tokens[1:]
        out.append(" ".join(tokens).lower().replace("pg_catalog.", ""))
    return out


def signature(key: str) -> tuple[str, list[str]] | None:
    """The name and argument types of a function's key."""
    m = re.match(r"function ([^(]+)\((.*)\)$", key)
    return (m.group(1), _types(m.group(2))) if m else None


def dropped(unit: Unit) -> tuple[str, list[str]] | None:
    """The name and argument types of the function a ``drop function`` statement removes."""
    if unit.drops is None:
        return None
    code = _code(unit.text)
    open_paren = code.find("(")
    return (unit.drops, _types(_arguments(code, open_paren)) if open_paren >= 0 else [])


@functools.lru_cache(maxsize=32)
def _definitions(text: str) -> dict[str, str]:
    """The text of each key's first unit in ``text``: parsed once per revision, not once per
    marker that names it."""
    found: dict[str, str] = {}
    for unit in units(text):
        if unit.key is not None:
            found.setdefault(unit.key, unit.text)
    return found


def marker(revision: str, key: str) -> str:
    return f"-- unchanged since {revision}: {key}\n"


def expand(text: str, read: Callable[[str], str], revision: str | None = None) -> str:
    """The released text of a delta: each marker replaced by the definition it names, taken from
    the files of the revision it names (``read(revision)`` gives them joined, in order), itself
    expanded. ``revision`` only guards against a marker naming its own or a later revision."""

    def definition(m: re.Match[str]) -> str:
        source, key = m.group(1), m.group(2)
        if revision is not None and source >= revision:
            raise ValueError(f"marker in {revision} names revision {source}: {key}")
        found = _definitions(read(source)).get(key)
        if found is None:
            raise ValueError(f"revision {source} does not define {key}")
        return expand(found, read, source)

    return MARKER.sub(lambda m: definition(m).rstrip("\n"), text)
