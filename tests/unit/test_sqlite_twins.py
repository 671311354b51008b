"""The SQLite twin mirrors the SQL by name: every ``scheduler.<name>`` function of
``sql/postgres/NN_<concern>.sql`` has a Python function of that name in
``scheduler_admin/sqlite/<concern>.py``, or is listed in ``scheduler_admin/sqlite/twins.py``
with the reason it has none there. Both sides are read as text (the SQL with a regular
expression, the Python with ast), so removing a twin, or listing one that exists, fails."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from scheduler_admin.sqlite import twins

REPO = Path(__file__).resolve().parents[2]
SQL = REPO / "sql" / "postgres"
PY = REPO / "scheduler_admin" / "sqlite"
CREATE = re.compile(r"create\s+or\s+replace\s+function\s+scheduler\.(\w+)\s*\(", re.I)


def sql_functions() -> dict[str, str]:
    """Each SQL function's name -> the module that mirrors its file (``40_recovery.sql`` ->
    ``recovery``)."""
    found: dict[str, str] = {}
    for path in sorted(SQL.glob("[0-9]*.sql")):
        module = path.stem.split("_", 1)[1]
        for name in CREATE.findall(path.read_text(encoding="utf-8")):
            assert found.setdefault(name, module) == module, f"{name} in two files"
    return found


def python_names(module: str) -> set[str]:
    """The functions a module of sqlite/ defines at its top level, and the names it imports (a
    twin re-exported from core.py, as functions.py does job_name and meeting_id)."""
    path = PY / f"{module}.py"
    if not path.exists():
        return set()
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def defined(module: str) -> set[str]:
    path = PY / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_sql_function_has_its_twin_in_the_mirroring_module_or_a_reason() -> None:
    """A name of ours in SQL is found in Python in the module named after its file; the others
    are listed with their reason."""
    listed = set(twins.NO_COUNTERPART) | set(twins.ELSEWHERE)
    missing = sorted(
        f"{name} ({module}.py)"
        for name, module in sql_functions().items()
        if name not in listed and name not in python_names(module)
    )
    assert not missing, "SQL functions without a Python twin of the same name: " + ", ".join(
        missing
    )


def test_the_lists_hold_only_sql_functions_without_a_twin() -> None:
    """Nothing listed is missing from the SQL, has its twin in the mirroring module after all,
    or is listed twice; every reason says something."""
    functions = sql_functions()
    lists = [set(twins.NO_COUNTERPART), set(twins.ELSEWHERE)]
    assert not lists[0] & lists[1]
    for name in set().union(*lists):
        assert name in functions, f"{name} is listed but no SQL function of ours"
        assert name not in python_names(functions[name]), (
            f"{name} is listed but {functions[name]}.py has it"
        )
    for reason in twins.NO_COUNTERPART.values():
        assert len(reason) > 20


def test_a_twin_standing_elsewhere_is_defined_where_the_list_says() -> None:
    """The few twins that cannot stand in the mirroring module (imports only go down) are
    defined in the module named, with a reason."""
    for name, (module, reason) in twins.ELSEWHERE.items():
        assert name in defined(module), f"{name} is not defined in {module}.py"
        assert len(reason) > 20


def test_the_parsers_read_both_sides() -> None:
    """Guards against a parser that finds nothing: the SQL holds dozens of functions, and
    removing a twin from a module is seen."""
    functions = sql_functions()
    assert len(functions) > 80
    assert functions["recover"] == "recovery" and functions["complete_due"] == "functions"
    assert "complete_due" in defined("functions")
    assert "repair_all" in defined("recovery") and "repair_transitions" in defined("transitions")
