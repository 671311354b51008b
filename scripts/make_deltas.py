"""How the released revisions 0002-0008 became deltas (scheduler_admin/sql_units.py), kept so
that it can be reproduced from git history: on a checkout whose sql/revisions/ holds the files as
released (``git checkout 9308ec2 -- sql/revisions``),

    python scripts/make_deltas.py --write 0008

replaces each definition that a revision repeated word for word (the one in effect when its file
ran) by a marker naming the revision that holds it, and gives the files stored today. Without
--write it prints the lines before and after. Not for new revisions: scripts/next_delta.py
writes those."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scheduler_admin.sql_units import dropped, marker, signature, units  # noqa: E402

REVISIONS = ROOT / "sql" / "revisions"
DIALECT = {"postgres": "postgresql", "sqlite": "sqlite"}


def module(revision: str):  # type: ignore[no-untyped-def]
    path = next((ROOT / "migrations" / "versions").glob(f"{revision}_*.py"))
    spec = importlib.util.spec_from_file_location(f"rev{revision}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def entries(revision: str, backend: str) -> list[tuple[str, str]]:
    files = module(revision).UPGRADE_FILES.get(DIALECT[backend], [])
    return [f if isinstance(f, tuple) else (revision, f) for f in files]


def main(write: bool, last: str) -> None:
    revisions = sorted(p.name for p in REVISIONS.iterdir() if p.name <= last)
    for backend in ("postgres", "sqlite"):
        state: dict[str, tuple[str, str]] = {}
        drops: dict[str, tuple[str, str]] = {}
        for revision in revisions:
            out: dict[str, str] = {}
            for source, name in entries(revision, backend):
                text = (REVISIONS / source / backend / name).read_text(encoding="utf-8")
                delta = []
                found = units(text)
                skip: set[int] = set()  # creates that go with a drop left out
                for i, unit in enumerate(found):
                    if (gone := dropped(unit)) is not None:
                        assert unit.key is not None
                        current = [k for k in state if signature(k) == gone]
                        later = next(
                            (j for j in range(i + 1, len(found))
                             if found[j].key and signature(found[j].key) == gone),
                            None,
                        )
                        earlier = drops.get(unit.key)
                        if (
                            source == revision
                            and later is not None
                            and current
                            and state[current[0]][0] == found[later].text
                            and earlier is not None
                            and earlier[0] == unit.text
                        ):
                            # dropped and created again as it was: neither needs to run
                            delta.append(marker(earlier[1], unit.key))
                            skip.add(later)
                            continue
                        for key in current:
                            del state[key]
                        if earlier is None or earlier[0] != unit.text:
                            drops[unit.key] = (unit.text, source)
                        delta.append(unit.text)
                        continue
                    if unit.key is None:
                        delta.append(unit.text)
                        continue
                    previous = state.get(unit.key)
                    if previous is not None and previous[0] == unit.text:
                        delta.append(marker(previous[1], unit.key))
                    else:
                        assert i not in skip
                        delta.append(unit.text)
                        state[unit.key] = (unit.text, source)
                if source == revision:
                    out[name] = "".join(delta)
            before = sum(
                len((REVISIONS / revision / backend / n).read_text().splitlines()) for n in out
            )
            after = sum(len(t.splitlines()) for t in out.values())
            print(f"{revision} {backend}: {before} -> {after} lines")
            if write and revision != "0001":
                for name, text in out.items():
                    (REVISIONS / revision / backend / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main("--write" in sys.argv, sys.argv[-1] if sys.argv[-1][:1].isdigit() else "9999")
