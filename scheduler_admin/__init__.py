"""Meeting status scheduler: pg_cron jobs that mark upcoming meetings done when they end."""

from __future__ import annotations

__version__ = "0.1.0"
