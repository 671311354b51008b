"""Passwords made of every character that breaks URL parsing, and a check that none leaked.

Each password interleaves distinctive markers (``Kq3v``-like words that no message ever
contains) with special characters. A leak of the whole password or of any piece of it between
two special characters shows up as a marker in the output.
"""

from __future__ import annotations

import random
from urllib.parse import quote

# Characters with a meaning in a URL, a conninfo, a log line or a JSON body, and bad escapes.
SPECIALS = [
    *"@/:?#&=%' \"\\,;[]{}!$^*()+|<>`~\t",
    "%zz",
    "%4",
    "%%",
    "%40",
    "@@",
    "://",
    "password=",
    "é",
    "\u2028",
]


def marker(rng: random.Random) -> str:
    """A word no message contains: an upper-case letter, a lower-case letter, a digit and Q."""
    return (
        rng.choice("BCDFGHJKLMNPRSTVWXZ")
        + rng.choice("bcdfghjkmnprstvwxz")
        + rng.choice("23456789")
        + "Q"
        + rng.choice("bcdfghjkmnprstvwxz")
    )


def password_of(markers: list[str], separators: list[str]) -> str:
    """``markers`` with ``separators`` between and around them."""
    parts = [separators[0]] if separators else []
    for i, m in enumerate(markers):
        parts.append(m)
        if i + 1 < len(separators):
            parts.append(separators[i + 1])
    return "".join(parts)


def generated_passwords(count: int, seed: int = 20260529) -> list[tuple[str, list[str]]]:
    """``count`` (password, markers) pairs; every special character appears in several."""
    rng = random.Random(seed)
    result = []
    for i in range(count):
        markers = [marker(rng) for _ in range(rng.randint(1, 4))]
        separators = [
            SPECIALS[(i + j) % len(SPECIALS)] if j % 2 else rng.choice(SPECIALS)
            for j in range(len(markers) + 1)
        ]
        if i % 3 == 0:
            separators[0] = ""  # starts with a marker
        result.append((password_of(markers, separators), markers))
    return result


# Passwords of the report that motivated the masking, with markers in place of their letters.
NAMED = [
    ("Kb2Qx/Mr3Qz#Ns4Qw?Pt5Qv@Rd6Qs%zz", ["Kb2Qx", "Mr3Qz", "Ns4Qw", "Pt5Qv", "Rd6Qs"]),
    ("Lc7Qp Tw8Qn", ["Lc7Qp", "Tw8Qn"]),
    ("Gh9Qm@Jk2Ql", ["Gh9Qm", "Jk2Ql"]),
]


def url_forms(password: str, host: str = "127.0.0.1", port: int = 1) -> list[str]:
    """The ways a password reaches the configuration: raw and encoded, in the user
    information, in the query, in a conninfo (quoted, with escapes, and bare)."""
    encoded = quote(password, safe="")
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    return [
        f"postgresql://app:{password}@{host}:{port}/db",
        f"postgresql://app:{encoded}@{host}:{port}/db",
        f"postgresql+psycopg://app:{password}@{host}:{port}/db",
        f"postgresql://app@{host}:{port}/db?sslmode=disable&password={password}",
        f"postgresql://{host}:{port}/db?password={encoded}&application_name=x",
        f"host={host} port={port} user=app password='{escaped}' dbname=db",
        f"host={host} port={port} password={password} dbname=db",
    ]


def leaked(markers: list[str], *texts: str) -> list[str]:
    """The markers found in any of ``texts`` (empty: nothing leaked)."""
    return [m for m in markers if any(m in t for t in texts)]
