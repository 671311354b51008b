"""Maintainer tool: the SQL functions of sql/postgres/ that changed since a git revision, as the
statements a new alembic revision's delta needs (each function's leading comment, its
``create or replace function`` and its ``comment on function``), in schema file order.

    python scripts/changed_functions.py <git-revision> > sql/revisions/<next>/postgres/functions.sql

New files are not included (apply them whole); tables, triggers and grants are written by hand.
A person reviews the output before it is frozen.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "sql" / "postgres"
START = re.compile(r"^create or replace function (scheduler\.\w+)\(", re.M)


def blocks(text: str) -> dict[str, str]:
    """{function name: its statements} of one schema file (one entry per name: overloads are
    kept together)."""
    lines = text.splitlines(keepends=True)
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = START.match(lines[i])
        if not m:
            i += 1
            continue
        name = m.group(1)
        # the comment lines just above it
        j = i
        while j > 0 and lines[j - 1].startswith("--"):
            j -= 1
        k = i
        while not lines[k].startswith("$$;"):
            k += 1
        k += 1
        # its comment on function, if it follows
        if k < len(lines) and lines[k].startswith(f"comment on function {name}("):
            while not lines[k].rstrip().endswith(";"):
                k += 1
            k += 1
        out[name] = out.get(name, "") + "".join(lines[j:k]) + "\n"
        i = k
    return out


def main(since: str) -> None:
    for path in sorted(SQL.glob("[0-9]*.sql")):
        rel = path.relative_to(ROOT).as_posix()
        try:
            old = subprocess.run(["git", "show", f"{since}:{rel}"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout
        except subprocess.CalledProcessError:
            continue  # a new file: applied whole
        before, after = blocks(old), blocks(path.read_text(encoding="utf-8"))
        changed = [n for n in after if before.get(n) != after[n]]
        if changed:
            sys.stdout.write(f"-- from {rel}\n\n")
            for name in changed:
                sys.stdout.write(after[name])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "HEAD")
