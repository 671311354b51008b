"""What the emulated cron worker, the waker and the webhook dispatcher share: a loop that runs
in the foreground until SIGTERM/SIGINT, or in a daemon thread inside an application until
``stop()``."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, message: str) -> Iterator[None]:
    """In the main thread, SIGTERM and SIGINT set ``stop`` (and log ``message``) while the block
    runs; the previous handlers come back afterwards. Elsewhere it does nothing."""
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: %s", signum, message)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class ThreadedLoop:
    """``start_thread()`` and ``stop()`` for a class whose ``run_forever(stop_event)`` loops
    until the event is set."""

    thread_name = "scheduler-loop"
    _stop: threading.Event
    _thread: threading.Thread | None

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        raise NotImplementedError

    def start_thread(self) -> threading.Thread:
        """Run the loop in a daemon thread (inside an application); stop it with stop()."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.run_forever, args=(self._stop,), name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread started by start_thread() (after its current step)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
