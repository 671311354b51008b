"""Fixtures of the attack tests on the self-hosted shape (tests/postgres/test_attacks.py and
test_attacks_round_two.py): the attack log, and login roles with exactly the grants given."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from attack_helpers import create_attack_log, drop_attack_log, dsn_as
from pg_helpers import Conn, Server, connect


@pytest.fixture
def attack_log(db: Conn) -> Iterator[None]:
    create_attack_log(db)
    try:
        yield
    finally:
        drop_attack_log(db)


@pytest.fixture
def login_as(db: Conn, migrated: Server) -> Iterator[Callable[..., Conn]]:
    """login_as(role, *grants): create a login role, grant it exactly that, connect as it.
    The connections are closed and the roles dropped (with what they own) at teardown."""
    roles: list[str] = []
    with ExitStack() as connections:

        def login(role: str, *grants: str) -> Conn:
            db.execute(f"drop role if exists {role}")
            db.execute(f"create role {role} login")
            roles.append(role)
            for grant in grants:
                db.execute(grant.format(role=role))
            return connections.enter_context(connect(dsn_as(migrated, role)))

        try:
            yield login
        finally:
            connections.close()
            for role in roles:
                db.execute(f"drop owned by {role}")
                db.execute(f"drop role {role}")
