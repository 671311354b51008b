"""One exception hierarchy for the package.

Every expected failure is a :class:`SchedulerError`; the CLI prints ``Error: <message>`` and exits
1 for these. The docstring of each class is its default message.
"""

from __future__ import annotations


class SchedulerError(Exception):
    """The meeting status scheduler failed."""

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ConfigurationError(SchedulerError):
    """The configuration is incomplete or invalid."""


class ConnectionFailed(SchedulerError):
    """Could not connect to the database."""


class PermissionDenied(SchedulerError):
    """The database refused the operation to this role or key."""


class NotMigrated(SchedulerError):
    """The database has not been migrated: run `scheduler-admin migrate`."""


class PgCronUnavailable(SchedulerError):
    """pg_cron is not usable in this database."""


class MeetingNotFound(SchedulerError):
    """No meeting has this id."""

    def __init__(self, meeting_id: str, *, hint: str | None = None) -> None:
        self.meeting_id = meeting_id
        super().__init__(f"no meeting with id {meeting_id}", hint=hint)


class InvalidInput(SchedulerError):
    """The input is invalid."""


class DatabaseError(SchedulerError):
    """The database reported an error."""
