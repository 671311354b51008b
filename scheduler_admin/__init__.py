"""Meeting status scheduler: pg_cron jobs that mark upcoming meetings done when they end.

``from scheduler_admin import scheduler_service`` gives the default
:class:`~scheduler_admin.service.SchedulerService`, configured from the environment on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scheduler_admin.core import VERSION

__version__ = VERSION
__all__ = ["SchedulerService", "scheduler_service"]

if TYPE_CHECKING:
    from scheduler_admin.service import SchedulerService

    scheduler_service: SchedulerService

_default: Any = None


def __getattr__(name: str) -> Any:
    global _default
    if name == "scheduler_service":
        if _default is None:
            from scheduler_admin.service import SchedulerService

            _default = SchedulerService()
        return _default
    if name == "SchedulerService":
        from scheduler_admin.service import SchedulerService

        return SchedulerService
    raise AttributeError(f"module 'scheduler_admin' has no attribute {name!r}")
