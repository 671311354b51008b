"""One exception hierarchy for the package.

Every expected failure is a :class:`SchedulerError`; the CLI prints ``Error: <message>`` and
``Hint: <hint>``, and exits 1 for these. The docstring of each class is its default message, and
its ``default_hint`` the hint (what to do) when the code that raises it has no more precise one:
every error carries a ``hint``. ``str()`` of an error is its message and the raiser's own hint
only (it is stored in run messages and recovery reports, where a general hint is noise).
"""

from __future__ import annotations


class SchedulerError(Exception):
    """The meeting status scheduler failed."""

    default_hint = (
        "Run `scheduler-admin doctor` to check the configuration and the database; "
        "see docs/operations.md."
    )

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.hint = hint or self.default_hint
        self._own_hint = hint  # str() keeps to the raiser's hint (it goes into stored messages)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message}\n{self._own_hint}" if self._own_hint else self.message


class ConfigurationError(SchedulerError):
    """The configuration is incomplete or invalid."""

    default_hint = (
        "See docs/configuration.md for the settings and the order they are read in; "
        "`scheduler-admin doctor` says which one is in use."
    )


class ConnectionFailed(SchedulerError):
    """Could not connect to the database."""

    default_hint = (
        "Check that the database server is running and reachable, and the URL's host, port, "
        "user and password."
    )


class PermissionDenied(SchedulerError):
    """The database refused the operation to this role or key."""

    default_hint = (
        "Connect as the role that ran `scheduler-admin migrate` (the owner of meetings), or "
        "grant this role what it lacks; see docs/security.md."
    )


class NotMigrated(SchedulerError):
    """The database has not been migrated: run `scheduler-admin migrate`."""

    default_hint = (
        "Run `scheduler-admin migrate` (or `alembic upgrade head`) with the same database URL."
    )


class PgCronUnavailable(SchedulerError):
    """pg_cron is not usable in this database."""

    default_hint = (
        "Add pg_cron to shared_preload_libraries, set cron.database_name to this database, "
        "restart the server, then run `scheduler-admin migrate`; see docs/install.md."
    )


class MeetingNotFound(SchedulerError):
    """No meeting has this id."""

    def __init__(self, meeting_id: str, *, hint: str | None = None) -> None:
        self.meeting_id = meeting_id
        quoted = str(meeting_id).replace("'", "''")
        self.default_hint = (
            "Check the id: it must be the id column of a row of meetings "
            f"(select id, status, end_time from meetings where id = '{quoted}'); "
            "`scheduler-admin list-jobs` lists the upcoming meetings that have jobs."
        )
        super().__init__(f"no meeting with id {meeting_id}", hint=hint)


class InvalidInput(SchedulerError):
    """The input is invalid."""

    default_hint = (
        "Correct the value the message names; `scheduler-admin COMMAND --help` lists what "
        "each command accepts."
    )


class DatabaseError(SchedulerError):
    """The database reported an error."""

    default_hint = (
        "The database's own message says what failed: correct that, then try again; "
        "`scheduler-admin doctor` checks the scheduler, and -vv shows the traceback."
    )
