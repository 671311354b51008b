"""Static lint of the PostgreSQL functions in ``sql/postgres/[0-9]*.sql`` (no database).

The rule (DESIGN.md, "PostgreSQL objects"): every function of ours

1. pins ``set search_path = pg_catalog, pg_temp`` in its header (before or after the body), and
2. names every type schema-qualified: parameters, ``returns`` (``setof``, ``table (...)``),
   plpgsql ``declare`` sections (``%type``/``%rowtype`` included), casts ``x::t``, ``cast(x as t)``
   and typed literals ``t '...'``, in the body and in nested dollar-quoted dynamic SQL.

Why: with ``search_path = ''`` PostgreSQL still looks types up in the caller's temporary schema
``pg_temp`` first, so a role that writes meetings can create ``pg_temp.text`` as a domain whose
check runs code as the function's owner. Listing ``pg_temp`` explicitly last stops that, and
qualifying every type (``pg_catalog.text``) does not depend on the path at all. Only the SQL
keyword types that the grammar itself maps to ``pg_catalog`` (``integer``, ``boolean``,
``timestamp with time zone``, ``varchar(n)``, ...) may stay unqualified: no schema can shadow them.

Only the top-level files are the current schema; frozen copies of released revisions live in
subdirectories and are never linted. ``do`` blocks, ``comment on function`` and ``grant ... on
function`` statements are not function definitions and are skipped. The linter is a small
tokenizer (comments dropped, string literals and dollar-quoted strings kept as single tokens, so
``::`` or ``%L`` inside them is never read as code) plus a reader for each place a type can appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

SQL_DIR = Path(__file__).resolve().parents[2] / "sql" / "postgres"

REQUIRED_SEARCH_PATH = "set search_path = pg_catalog, pg_temp"

# SQL keyword types: the grammar turns these into pg_catalog types without a catalog lookup by
# name, so a type in pg_temp cannot shadow them. Matched against the type's unquoted words, with
# any (precision) and [] removed.
KEYWORD_TYPE = re.compile(
    r"""
    integer | int | smallint | bigint | boolean | real | float | double\ precision
    | numeric | decimal | dec
    | interval (?:\ (?:year|month|day|hour|minute|second)
                  (?:\ to\ (?:month|hour|minute|second))?)?
    | (?:timestamp|time) (?:\ (?:with|without)\ time\ zone)?
    | (?:character|char) (?:\ varying)? | varchar
    | bit (?:\ varying)?
    """,
    re.VERBOSE,
)


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that may precede a string literal without being a type name ("like 'a%'",
# "raise notice '...'", "at time zone 'UTC'"): PostgreSQL's reserved keywords (which can never
# name a type) and the plpgsql and operator keywords that take a string argument.
NOT_A_TYPE_BEFORE_STRING = word_set(
    """
    all and any array as asc both by case cast check collate column constraint create default
    desc distinct do else end except fetch for from grant group having in intersect into is
    isnull notnull lateral leading limit not null offset on only or order placing returning
    select some symmetric table then to trailing union unique using variadic when where window
    with like ilike similar escape uescape overlaps between zone language
    raise exception notice warning info log debug execute return perform assert
    if elsif elseif while loop exit continue foreach slice open move close get diagnostics next
    query strict reverse values over partition nulls first last document content
    """
)

# Header clauses that end a `returns` type.
HEADER_CLAUSES = word_set(
    """
    language transform window immutable stable volatile not called returns strict security
    external leakproof parallel cost rows support set as return begin
    """
)

PARAMETER_MODES = word_set("in out inout variadic")


# --- tokenizer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # word, ident (quoted), string, dollar, number, param, op
    text: str  # a word lowercased; a string's or dollar-quote's contents; else the source text
    pos: int  # offset of the token in the file
    end: int  # offset just after the token
    body_pos: int = 0  # dollar quotes: offset of the contents in the file

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and (not words or self.text in words)


TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<dollar>\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$)
    | (?P<estring>[eE]')
    | (?P<string>(?:[bBxXnN]|[uU]&)?')
    | (?P<ident>(?:[uU]&)?")
    | (?P<number>\d+(?:\.(?!\.)\d*)?(?:[eE][+-]?\d+)?)
    | (?P<word>[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*)
    | (?P<param>\$\d+)
    | (?P<op>::|:=|\.\.|.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _skip_block_comment(sql: str, i: int) -> int:
    """Index just after the (possibly nested) /* ... */ comment whose opener ends at i."""
    depth = 1
    while depth and i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _end_of_quoted(sql: str, i: int, quote: str, backslash: bool = False) -> int:
    """Index just after the closing quote, given i just after the opening one ('' escapes)."""
    while i < len(sql):
        if backslash and sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            if sql.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(sql)  # unterminated: the rest of the text


def tokenize(sql: str, base: int = 0) -> list[Token]:
    """Tokens of ``sql`` without whitespace and comments; positions are offset by ``base``."""
    tokens: list[Token] = []
    i = 0
    while i < len(sql):
        m = TOKEN.match(sql, i)
        assert m is not None  # the last alternative matches any character
        kind, start, i = m.lastgroup or "op", m.start(), m.end()
        if kind in ("space", "line_comment"):
            continue
        if kind == "block_comment":
            i = _skip_block_comment(sql, i)
            continue
        if kind == "dollar":
            tag = m.group()
            close = sql.find(tag, i)
            close = len(sql) if close < 0 else close
            tokens.append(
                Token("dollar", sql[i:close], base + start, base + close + len(tag), base + i)
            )
            i = close + len(tag)
            continue
        if kind in ("string", "estring", "ident"):
            quote = '"' if kind == "ident" else "'"
            i = _end_of_quoted(sql, i, quote, backslash=kind == "estring")
            text = sql[m.end() : i - 1].replace(quote * 2, quote)
            tokens.append(
                Token("ident" if kind == "ident" else "string", text, base + start, base + i)
            )
            continue
        text = m.group().lower() if kind == "word" else m.group()
        tokens.append(Token(kind, text, base + start, base + i))
    return tokens


def split_statements(tokens: Sequence[Token]) -> Iterator[list[Token]]:
    """Top-level statements (semicolons inside dollar-quoted bodies are inside one token)."""
    statement: list[Token] = []
    for token in tokens:
        if token.kind == "op" and token.text == ";":
            if statement:
                yield statement
            statement = []
        else:
            statement.append(token)
    if statement:
        yield statement


def closing_paren(tokens: Sequence[Token], i: int) -> int:
    """Index of the parenthesis that closes the one at ``tokens[i]`` (len(tokens) if none)."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].text in ("(", "[") and tokens[j].kind == "op":
            depth += 1
        elif tokens[j].text in (")", "]") and tokens[j].kind == "op":
            depth -= 1
            if depth == 0:
                return j
    return len(tokens)


def split_top_level(tokens: Sequence[Token], separator: str = ",") -> list[list[Token]]:
    """Split on ``separator`` outside parentheses and brackets."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "op" and token.text in ("(", "["):
            depth += 1
        elif token.kind == "op" and token.text in (")", "]"):
            depth -= 1
        if depth == 0 and token.kind == "op" and token.text == separator:
            parts.append([])
        else:
            parts[-1].append(token)
    return [part for part in parts if part]


# --- types -----------------------------------------------------------------------------------


def source(sql: str, tokens: Sequence[Token]) -> str:
    """The source text of a run of tokens, whitespace collapsed."""
    return " ".join(sql[tokens[0].pos : tokens[-1].end].split()) if tokens else ""


def _type_core(tokens: Sequence[Token]) -> list[Token]:
    """A type without setof, (modifiers) and array decorations ([], [3], array, array[3])."""
    core = list(tokens)
    if core and core[0].is_word("setof"):
        core = core[1:]
    kept: list[Token] = []
    i = 0
    while i < len(core):
        token = core[i]
        if token.kind == "op" and token.text in ("(", "["):
            i = closing_paren(core, i) + 1
        elif token.is_word("array"):
            i += 1
        else:
            kept.append(token)
            i += 1
    return kept


def is_dotted_name(tokens: Sequence[Token]) -> bool:
    """True for ``a``, ``a.b``, ``a.b.c`` (words or quoted identifiers)."""
    return len(tokens) % 2 == 1 and all(
        (t.kind in ("word", "ident")) if k % 2 == 0 else (t.kind == "op" and t.text == ".")
        for k, t in enumerate(tokens)
    )


def is_type_shaped(tokens: Sequence[Token]) -> bool:
    """True when the tokens read as a type alone (so a parameter has no name)."""
    core = _type_core(tokens)
    if len(core) >= 3 and core[-2].text == "%" and core[-1].is_word("type", "rowtype"):
        return is_dotted_name(core[:-2])
    return is_dotted_name(core) or (
        all(t.kind == "word" for t in core)
        and bool(KEYWORD_TYPE.fullmatch(" ".join(t.text for t in core)))
    )


def type_problem(sql: str, tokens: Sequence[Token]) -> str | None:
    """The type's text when it is unqualified and not a SQL keyword type, else None."""
    core = _type_core(tokens)
    if not core:
        return None
    if any(t.kind == "op" and t.text == "%" for t in core):
        # var%type / table.column%type / table%rowtype: the referenced relation is looked up on
        # the search path unless its schema is given (schema.table.column, schema.table).
        dots = sum(1 for t in core if t.kind == "op" and t.text == ".")
        needed = 2 if core[-1].is_word("type") else 1
        return None if dots >= needed else source(sql, tokens)
    if len(core) >= 3 and is_dotted_name(core):
        return None  # schema-qualified
    if all(t.kind == "word" for t in core) and KEYWORD_TYPE.fullmatch(
        " ".join(t.text for t in core)
    ):
        return None
    return source(sql, tokens)


def read_type(tokens: Sequence[Token], i: int) -> int:
    """Index just after the type that starts at ``tokens[i]`` (after ``::``), read greedily."""
    n = len(tokens)

    def words_at(j: int, *words: str) -> bool:
        return j + len(words) <= n and all(tokens[j + k].is_word(w) for k, w in enumerate(words))

    def skip_parens(j: int) -> int:
        return closing_paren(tokens, j) + 1 if j < n and tokens[j].text == "(" else j

    if i >= n:
        return i
    first = tokens[i]
    i += 1
    while i + 1 < n and tokens[i].text == "." and tokens[i + 1].kind in ("word", "ident"):
        i += 2
    if (first.is_word("double") and words_at(i, "precision")) or (
        first.is_word("character", "char", "bit") and words_at(i, "varying")
    ):
        i += 1
    elif first.is_word("timestamp", "time"):
        i = skip_parens(i)
        for zone in (("with", "time", "zone"), ("without", "time", "zone")):
            if words_at(i, *zone):
                i += 3
    elif first.is_word("interval"):
        while i < n and tokens[i].is_word("year", "month", "day", "hour", "minute", "second", "to"):
            i += 1
    i = skip_parens(i)
    while i < n and (tokens[i].text == "[" or tokens[i].is_word("array")):
        if tokens[i].is_word("array"):
            i += 1
        if i < n and tokens[i].text == "[":
            i = closing_paren(tokens, i) + 1
    return i


# --- functions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    function: str
    rule: str  # "search_path" or "type"
    where: str  # what was checked: "header", "parameter p_id", "cast", ...
    offending: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.function}: {self.where}: {self.offending!r}" + (
            f" (want {REQUIRED_SEARCH_PATH!r})" if self.rule == "search_path" else ""
        )


@dataclass(frozen=True)
class FunctionDefinition:
    name: str
    header: list[Token]  # the statement without its body, from `create` on
    params: list[Token]  # inside the parentheses
    after_params: int  # index in header just after the closing parenthesis
    body: Token | None  # the dollar-quoted (or string) body after `as`
    language: str


def function_definitions(tokens: Sequence[Token]) -> Iterator[FunctionDefinition]:
    """Every `create [or replace] function|procedure` statement (other statements skipped)."""
    for statement in split_statements(tokens):
        words = [t.text if t.kind == "word" else "" for t in statement[:5]]
        if words[:1] != ["create"]:
            continue
        kind_at = 3 if words[1:3] == ["or", "replace"] else 1
        if len(words) <= kind_at or words[kind_at] not in ("function", "procedure"):
            continue
        i = kind_at + 1
        name_start = i
        while i < len(statement) and statement[i].text != "(":
            i += 1
        name = "".join(
            t.text if t.kind != "ident" else f'"{t.text}"' for t in statement[name_start:i]
        )
        close = closing_paren(statement, i)
        body_at = next(
            (
                j + 1
                for j in range(close + 1, len(statement) - 1)
                if statement[j].is_word("as") and statement[j + 1].kind in ("dollar", "string")
            ),
            None,
        )
        header = [t for j, t in enumerate(statement) if j != body_at]
        language = next(
            (
                header[j + 1].text.lower()
                for j in range(close + 1, len(header) - 1)
                if header[j].is_word("language")
            ),
            "",
        )
        yield FunctionDefinition(
            name=name,
            header=header,
            params=list(statement[i + 1 : close]),
            after_params=close + 1,
            body=statement[body_at] if body_at is not None else None,
            language=language,
        )


def search_path_clauses(header: Sequence[Token]) -> list[list[Token]]:
    """The tokens of each `set search_path ...` clause of a function header."""
    clauses = []
    for i, token in enumerate(header[:-1]):
        if token.is_word("set") and header[i + 1].is_word("search_path"):
            j = i + 2
            if j < len(header) and (header[j].text == "=" or header[j].is_word("to", "from")):
                j += 1
            j += 1  # first value
            while j + 1 < len(header) and header[j].text == ",":
                j += 2
            clauses.append(list(header[i : min(j, len(header))]))
    return clauses


def is_required_search_path(clause: str) -> bool:
    """Compare with REQUIRED_SEARCH_PATH ignoring case and whitespace."""
    return "".join(clause.lower().split()) == "".join(REQUIRED_SEARCH_PATH.split())


def declared_types(tokens: Sequence[Token]) -> Iterator[tuple[str, list[Token]]]:
    """(variable name, type tokens) of the plpgsql `declare` sections among ``tokens``."""
    i = 0
    while i < len(tokens):
        if not tokens[i].is_word("declare"):
            i += 1
            continue
        end = next(
            (j for j in range(i + 1, len(tokens)) if tokens[j].is_word("begin")), len(tokens)
        )
        for declaration in split_statements(tokens[i + 1 : end]):
            name, rest = declaration[0], declaration[1:]
            if rest and rest[0].is_word("constant"):
                rest = rest[1:]
            if not rest or rest[0].is_word("alias"):
                continue
            cursor_at = next((k for k, t in enumerate(rest) if t.is_word("cursor")), None)
            if cursor_at is not None:  # c [no] [scroll] cursor [(arguments)] for query
                if cursor_at + 1 < len(rest) and rest[cursor_at + 1].text == "(":
                    close = closing_paren(rest, cursor_at + 1)
                    yield from parameter_types(rest[cursor_at + 2 : close])
                continue
            stop = next(
                (
                    k
                    for k, t in enumerate(rest)
                    if t.is_word("collate", "not", "default") or t.text in (":=", "=")
                ),
                len(rest),
            )
            yield f"variable {name.text}", list(rest[:stop])
        i = end


def parameter_types(tokens: Sequence[Token]) -> Iterator[tuple[str, list[Token]]]:
    """(description, type tokens) of a parameter list (or a `returns table` column list)."""
    for parameter in split_top_level(tokens):
        if parameter and parameter[0].is_word(*PARAMETER_MODES) and len(parameter) > 1:
            parameter = parameter[1:]
        stop = next(
            (k for k, t in enumerate(parameter) if t.is_word("default") or t.text == "="),
            len(parameter),
        )
        declaration = parameter[:stop]
        if is_type_shaped(declaration):
            yield "parameter", declaration
        else:
            yield f"parameter {declaration[0].text}", declaration[1:]


def return_types(header: Sequence[Token], i: int) -> Iterator[tuple[str, list[Token]]]:
    """The types of the `returns` clause at ``header[i]`` (if the header has one there)."""
    if i >= len(header) or not header[i].is_word("returns"):
        return
    if i + 2 < len(header) and header[i + 1].is_word("table") and header[i + 2].text == "(":
        close = closing_paren(header, i + 2)
        for where, type_tokens in parameter_types(header[i + 3 : close]):
            yield where.replace("parameter", "returns table column"), type_tokens
        return
    end = i + 1
    while end < len(header) and not (end > i + 1 and header[end].is_word(*HEADER_CLAUSES)):
        end = closing_paren(header, end) + 1 if header[end].text == "(" else end + 1
    yield "returns", list(header[i + 1 : end])


def cast_and_literal_types(tokens: Sequence[Token]) -> Iterator[tuple[str, list[Token]]]:
    """Types written in expressions: ``x::t``, ``cast(x as t)``, typed literals ``t '...'``.

    Nested dollar-quoted strings are read as code too (dynamic SQL run by ``execute``).
    """
    for i, token in enumerate(tokens):
        if token.kind == "dollar":
            yield from cast_and_literal_types(tokenize_dollar(token))
        elif token.kind == "op" and token.text == "::":
            yield "cast", list(tokens[i + 1 : read_type(tokens, i + 1)])
        elif token.is_word("cast") and i + 1 < len(tokens) and tokens[i + 1].text == "(":
            close = closing_paren(tokens, i + 1)
            inner = tokens[i + 2 : close]
            as_at = [k for k, t in enumerate(inner) if t.is_word("as")]
            if as_at:
                yield "cast", list(inner[as_at[-1] + 1 :])
        elif (
            token.kind in ("word", "ident")
            and i + 1 < len(tokens)
            and tokens[i + 1].kind == "string"
            and token.text not in NOT_A_TYPE_BEFORE_STRING
            and not (i > 0 and tokens[i - 1].text == ".")  # qualified: schema.type '...'
        ):
            yield "typed literal", [token]


def tokenize_dollar(token: Token) -> list[Token]:
    """Tokens of a dollar-quoted string's contents, positioned in the file."""
    return tokenize(token.text, token.body_pos)


def lint_sql(sql: str, file: str = "<sql>") -> list[Violation]:
    """Every violation of the search_path and qualified-type rules in one SQL file."""
    violations: list[Violation] = []

    def line(pos: int) -> int:
        return sql.count("\n", 0, pos) + 1

    for function in function_definitions(tokenize(sql)):

        def report(rule: str, where: str, at: int, offending: str, fn: str = function.name) -> None:
            violations.append(Violation(file, line(at), fn, rule, where, offending))

        header = function.header
        clauses = search_path_clauses(header)
        if not clauses:
            report("search_path", "header has no search_path", header[0].pos, "(none)")
        for clause in clauses:
            if not is_required_search_path(source(sql, clause)) or len(clauses) > 1:
                report("search_path", "header", clause[0].pos, source(sql, clause))
        if function.body is None:
            report("type", "types not checked", header[0].pos, "body not dollar-quoted")

        typed: list[tuple[str, list[Token]]] = [
            *parameter_types(function.params),
            *return_types(header, function.after_params),
            *cast_and_literal_types(header),
        ]
        if function.body is not None:
            body = tokenize_dollar(function.body)
            if function.language == "plpgsql":
                typed.extend(declared_types(body))
            typed.extend(cast_and_literal_types(body))
        for where, type_tokens in typed:
            problem = type_problem(sql, type_tokens)
            if problem is not None:
                report("type", f"{where}: unqualified type", type_tokens[0].pos, problem)
    return violations


def sql_files(directory: Path = SQL_DIR) -> list[Path]:
    """The current schema: top-level numbered files only (revision copies live in subdirectories)."""
    return sorted(p for p in directory.glob("[0-9]*.sql") if p.is_file())


# --- the files -------------------------------------------------------------------------------


def test_there_are_sql_files_with_functions() -> None:
    """The glob finds the schema, and the parser finds its functions (the lint is not vacuous)."""
    files = sql_files()
    assert files, f"no {SQL_DIR}/[0-9]*.sql"
    count = sum(len(list(function_definitions(tokenize(p.read_text())))) for p in files)
    assert count >= 10, f"only {count} function definitions found in {SQL_DIR}"


@pytest.mark.parametrize("path", sql_files(), ids=lambda p: p.name)
def test_functions_pin_search_path(path: Path) -> None:
    """Every function's header has exactly `set search_path = pg_catalog, pg_temp`."""
    found = [v for v in lint_sql(path.read_text(), path.name) if v.rule == "search_path"]
    assert not found, f"{len(found)} function(s) without {REQUIRED_SEARCH_PATH!r}:\n" + "\n".join(
        map(str, found)
    )


@pytest.mark.parametrize("path", sql_files(), ids=lambda p: p.name)
def test_function_types_are_qualified(path: Path) -> None:
    """Every type in a function is schema-qualified or a SQL keyword type."""
    found = [v for v in lint_sql(path.read_text(), path.name) if v.rule == "type"]
    assert not found, f"{len(found)} unqualified type(s):\n" + "\n".join(map(str, found))


def test_only_top_level_files_are_linted(tmp_path: Path) -> None:
    """Frozen copies of released revisions (subdirectories) and non-numbered files are skipped."""
    (tmp_path / "r0001").mkdir()
    for name in ("10_schema.sql", "r0001/10_schema.sql", "teardown.sql", "20_notes.txt"):
        (tmp_path / name).write_text("select 1;")
    assert [p.name for p in sql_files(tmp_path)] == ["10_schema.sql"]


# --- the linter itself -----------------------------------------------------------------------

PINNED = REQUIRED_SEARCH_PATH


def fn(
    signature: str, body: str, *, returns: str = "pg_catalog.int4", lang: str = "plpgsql"
) -> str:
    return (
        f"create or replace function s.f({signature})\nreturns {returns}\nlanguage {lang}\n"
        f"{PINNED}\nas $fn$\n{body}\n$fn$;\n"
    )


SELF_TEST = [
    # search_path
    ("pinned", fn("", "begin return 1; end"), []),
    (
        "pinned after the body, mixed case and spacing",
        "CREATE FUNCTION s.f() RETURNS pg_catalog.int4 AS $$ select 1 $$ LANGUAGE sql\n"
        "SET  search_path=PG_CATALOG ,pg_temp;",
        [],
    ),
    (
        "empty search_path",
        "create function s.f() returns pg_catalog.int4 language sql set search_path = ''"
        " as $$ select 1 $$;",
        ["search_path set search_path = ''"],
    ),
    (
        "no search_path",
        "create function s.f() returns pg_catalog.int4 language sql as $$ select 1 $$;",
        ["search_path (none)"],
    ),
    (
        "extra schema after pg_temp",
        "create function s.f() returns pg_catalog.int4 language sql"
        " set search_path = pg_catalog, pg_temp, public as $$ select 1 $$;",
        ["search_path set search_path = pg_catalog, pg_temp, public"],
    ),
    (
        "pg_temp first",
        "create function s.f() returns pg_catalog.int4 language sql as $$ select 1 $$"
        " set search_path = pg_temp, pg_catalog;",
        ["search_path set search_path = pg_temp, pg_catalog"],
    ),
    (
        "search_path only in a comment",
        "create function s.f() returns pg_catalog.int4 language sql"
        " -- set search_path = pg_catalog, pg_temp\n as $$ select 1 $$;",
        ["search_path (none)"],
    ),
    # signatures
    (
        "qualified and keyword types in the signature",
        fn(
            "p_id pg_catalog.uuid, out o_n integer, p_at timestamp with time zone default null,"
            " p_s character varying(10) = 'x', variadic p_rest scheduler.thing[]",
            "begin return 1; end",
            returns="table (id pg_catalog.uuid, status pg_catalog.text, n numeric(5, 2))",
        ),
        [],
    ),
    (
        "unqualified parameter, unnamed parameter and return types",
        fn("p_id uuid, timestamptz, p_list text[]", "begin return 1; end", returns="setof jsonb"),
        ["type setof jsonb", "type text[]", "type timestamptz", "type uuid"],
    ),
    (
        "returns table: column names are not types",
        fn("", "begin end", returns="table (text pg_catalog.text, job_id bigint, name name)"),
        ["type name"],
    ),
    ("returns trigger", fn("", "begin return new; end", returns="trigger"), ["type trigger"]),
    (
        "returns null on null input is not a type",
        "create function s.f(p pg_catalog.text) returns pg_catalog.text returns null on null input"
        f" language sql {PINNED} as $$ select p $$;",
        [],
    ),
    # declare sections
    (
        "declare: qualified, keyword and %type forms",
        fn(
            "",
            "declare\n v_a pg_catalog.text not null := 'a';\n v_b integer := 0;\n"
            " v_c double precision;\n v_d public.meetings.status%type;\n"
            " v_e public.meetings%rowtype;\n v_f constant bigint[] := array[]::bigint[];\n"
            "begin return 1; end",
        ),
        [],
    ),
    (
        "declare: unqualified types",
        fn(
            "",
            "declare\n v_a text := 'it''s';\n v_b record;\n v_c meetings.status%type;\n"
            " v_d meetings%rowtype;\n v_e bool;\nbegin\n declare v_f int4;\n begin null; end;\n"
            " return 1;\nend",
        ),
        [
            "type bool",
            "type int4",
            "type meetings%rowtype",
            "type meetings.status%type",
            "type record",
            "type text",
        ],
    ),
    # casts and typed literals
    (
        "qualified casts and keyword literals",
        fn(
            "",
            "begin\n perform x::pg_catalog.text, cast(y as pg_catalog.uuid), z::integer[],\n"
            "   array[]::pg_catalog.text[], interval '1 day', pg_catalog.date '2020-01-01',\n"
            "   w::timestamp(3) with time zone, v::double precision;\n return 1;\nend",
        ),
        [],
    ),
    (
        "unqualified casts and typed literals",
        fn(
            "",
            "begin\n perform x::text, cast(y as uuid), array[]::name[], now()::timestamptz,\n"
            "   date '2020-01-01', v::\"integer\";\n return 1;\nend",
        ),
        [
            'type "integer"',
            "type date",
            "type name[]",
            "type text",
            "type timestamptz",
            "type uuid",
        ],
    ),
    (
        "dynamic SQL in a nested dollar quote is code",
        fn("", "begin\n execute $q$ select 1::text $q$;\n return 1;\nend"),
        ["type text"],
    ),
    (
        "not types: literals, comments, format specifiers and keywords",
        fn(
            "p_n integer",
            "-- a comment with x::text\n/* and /* nested */ y::uuid */\n"
            "begin\n"
            " perform pg_catalog.format('select f(%L::uuid, %I)', 'it''s::text', 'a');\n"
            " perform E'\\'::jsonb';\n"
            " perform extract(year from pg_catalog.now() at time zone 'UTC');\n"
            " perform pg_catalog.date_trunc('minute', pg_catalog.now());\n"
            " for i in 1 .. p_n loop null; end loop;\n"
            " if 'a' operator(pg_catalog.=) 'b' or 'c' like 'd%' then\n"
            "   raise exception 'bad: %', 'x::text' using hint = 'none';\n"
            " end if;\n return 1;\nend",
        ),
        [],
    ),
    (
        "a body the linter cannot read is reported, not passed",
        f"create function s.f() returns pg_catalog.int4 language sql {PINNED} return 1;",
        ["type body not dollar-quoted"],
    ),
    (
        "other statements: do blocks, comments and grants are skipped",
        "do $d$ declare v text; begin perform 1::text; end $d$;\n"
        "comment on function s.f(uuid, timestamptz) is 'f(text)';\n"
        "grant execute on function s.f(uuid, timestamptz) to someone;\n"
        "create or replace function s.g(p_id pg_catalog.uuid) returns pg_catalog.uuid"
        f" language sql {PINNED} as $$ select p_id $$;",
        [],
    ),
]


@pytest.mark.parametrize(
    ("sql", "expected"), [case[1:] for case in SELF_TEST], ids=[case[0] for case in SELF_TEST]
)
def test_linter_flags_exactly_the_bad_snippets(sql: str, expected: list[str]) -> None:
    """The rule itself: each snippet yields exactly the expected (rule, offending text) pairs."""
    found = sorted(f"{v.rule} {v.offending}" for v in lint_sql(sql))
    assert found == sorted(expected), "\n".join(str(v) for v in lint_sql(sql))
