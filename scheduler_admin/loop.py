"""What the emulated cron worker, the waker and the webhook dispatcher share: a loop that runs
in the foreground until SIGTERM/SIGINT, or in a daemon thread inside an application until
``stop()``; and, for the waker and the dispatcher, what they do when their database fails
(:class:`Backoff`: log once, back off, resume)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

BACKOFF_START = 1.0  # seconds: the first wait after the database failed, doubled each time
BACKOFF_CAP = 30.0  # seconds: the longest wait between two tries of the database


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


def describe(exc: BaseException) -> str:
    """What a failure says: a :class:`~scheduler_admin.exceptions.SchedulerError`'s message (its
    hint left out), else the exception's text, else the name of its class."""
    return (getattr(exc, "message", None) or str(exc)).strip() or type(exc).__name__


class Backoff:
    """Log once, back off, resume: what a loop does while its database fails, so that nothing
    raises into the application. The first failure is one WARNING (``<name>: <target> failed
    (<first line of the error>); retrying with back-off up to <cap> s``), each further one a
    DEBUG line; the wait before the next try starts at ``start`` seconds and doubles up to
    ``cap``; the first success after failures is one INFO line and starts over.

    ``redact`` masks what the error text must not show (the webhook URL, its secret)."""

    def __init__(
        self,
        log: logging.Logger,
        name: str,
        *,
        start: float = BACKOFF_START,
        cap: float = BACKOFF_CAP,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.log = log
        self.name = name
        self.start = start
        self.cap = cap
        self.redact = redact
        self.failures = 0  # consecutive failures (0: the database answers)

    def wait(self) -> float:
        """Seconds to wait after the failures so far (at least one)."""
        return min(self.cap, self.start * 2.0 ** min(self.failures - 1, 30))

    def failed(self, exc: BaseException, target: str) -> float:
        """Count a failure of ``target`` and log it; the seconds to wait before the next try."""
        self.failures += 1
        message = self.redact(describe(exc))
        wait = self.wait()
        if self.failures == 1:
            self.log.warning(
                "%s: %s failed (%s); retrying with back-off up to %g s",
                self.name,
                target,
                message.splitlines()[0],
                self.cap,
            )
        else:
            self.log.debug(
                "%s: failure %d (%s); next try in %g s", self.name, self.failures, message, wait
            )
        return wait

    def answered(self, target: str) -> None:
        """``target`` answered: after failures, say so once and start over."""
        if self.failures:
            self.log.info(
                "%s: %s answers again after %d failure(s)", self.name, target, self.failures
            )
            self.failures = 0
