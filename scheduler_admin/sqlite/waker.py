"""The Python twin of ``sql/postgres/21_waker.sql``: the election of the one active waker among
the processes that share a SQLite file (revision 0012, table ``scheduler_waker_lease``).

Several processes may open one file (an application served by several workers), each running
its waker. The holder of the lease calls ``wake()``; the others stand by and take the lease over
once it has expired. The caller's write transaction (``BEGIN IMMEDIATE``) serialises claimers,
as PostgreSQL's upsert does, so two wakers never both hold it. Times are the database's clock
(``Database.now()``), stored as :func:`~scheduler_admin.sqlite.connection.to_event_time` text.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.sqlite.connection import from_db_time, iso, to_event_time

ALL = "*"  # the scope of the wakers of every transition


def claim_waker(
    conn: sqlite3.Connection,
    now: datetime,
    holder: str,
    lease_seconds: float,
    transition: str | None = None,
) -> dict[str, Any]:
    """Twin of scheduler.claim_waker(): take or renew ``holder``'s lease until ``now +
    lease_seconds`` when nobody holds it, ``holder`` does, or the lease has expired; answer
    ``{held, holder, expires_at, now}``. In the caller's write transaction."""
    if not holder or len(holder) > 200 or not 0 < lease_seconds <= 60:
        raise InvalidInput(
            "claim_waker needs a holder of 1 to 200 characters and a lease of more than 0 and "
            "at most 60 seconds"
        )
    scope = transition or ALL
    stamp = to_event_time(now)
    conn.execute(
        """INSERT INTO scheduler_waker_lease (scope, holder, expires_at, acquired_at)
           VALUES (:scope, :holder, :until, :now)
           ON CONFLICT (scope) DO UPDATE
              SET holder = excluded.holder,
                  expires_at = excluded.expires_at,
                  acquired_at = CASE WHEN scheduler_waker_lease.holder = excluded.holder
                                     THEN scheduler_waker_lease.acquired_at
                                     ELSE excluded.acquired_at END
            WHERE scheduler_waker_lease.holder = excluded.holder
               OR scheduler_waker_lease.expires_at <= excluded.acquired_at""",
        {
            "scope": scope,
            "holder": holder,
            "until": to_event_time(now + timedelta(seconds=lease_seconds)),
            "now": stamp,
        },
    )
    row = conn.execute(
        "SELECT holder, expires_at FROM scheduler_waker_lease WHERE scope = ?", (scope,)
    ).fetchone()
    current = None if row is None else str(row[0])
    return {
        "held": current == holder,
        "holder": current,
        "expires_at": None if row is None else iso(from_db_time(row[1])),
        "now": iso(now),
    }


def release_waker(conn: sqlite3.Connection, holder: str, transition: str | None = None) -> bool:
    """Twin of scheduler.release_waker(): ``holder`` gives up its lease; whether it held it."""
    cursor = conn.execute(
        "DELETE FROM scheduler_waker_lease WHERE scope = ? AND holder = ?",
        (transition or ALL, holder),
    )
    return cursor.rowcount > 0
