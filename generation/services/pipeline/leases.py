"""Liveness of running steps: a lease that a heartbeat renews while the step works.

A claim gives the step a fresh token and a lease of PIPELINE_LEASE_SECONDS. While its run
works, the worker process's heartbeat renews the lease every quarter lease: one thread per
process renews the leases of every step the process runs, in one UPDATE guarded by their
tokens. So a lease runs out only when its process is gone (SIGKILL, a lost machine,
`make run` past its grace period) or when the step overran its time limit: the heartbeat
stops renewing a step past PIPELINE_STEP_TIME_LIMIT. That is the one time limit that holds
in the thread pool, where Celery's time limits are not enforced: a hung step becomes
recoverable, and the LLM client starts no attempt that could not end within the limit.

A RUNNING step whose lease has expired may be taken over, by a redelivered message or by
the recovery pass (generation.services.recovery); while the lease is live, any other
message for the step is a duplicate and is dropped. Whatever a run writes at its end (the
step's success with its output and next step, or its failure) is a compare-and-set on its
token, so a run that lost its lease — a hung thread that wakes up after the takeover —
stores nothing.

Why a thread, not renewals from the LLM client's retry loop: one request may last the
whole client timeout (minutes on the local model), so renewing between attempts would need
a lease longer than that, and a dead worker's steps would wait as long to be taken over.
The thread keeps the lease short whatever the endpoint; one thread per process (not per
step) keeps it to one query on one database connection per beat.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from generation.llm import LlmCallError
from generation.models import CallErrorKind, PipelineStep, StepStatus

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 4
# A step claimed this often was interrupted every time (say, it takes its worker down with
# it); it fails instead of taking the next worker down too.
STEP_MAX_RUNS = 5


class StepLeaseLost(Exception):
    """The run no longer holds the step: its lease expired and another run took it over."""


def lease_length() -> timedelta:
    return timedelta(seconds=settings.PIPELINE_LEASE_SECONDS)


def process_on_this_host(*, pid: int) -> str:
    """Who holds a lease: host:pid of a worker process (`make run` releases its worker's leases by it)."""
    return f"{socket.gethostname()}:{pid}"[:200]


def this_process() -> str:
    return process_on_this_host(pid=os.getpid())


@dataclass(frozen=True)
class _Held:
    step_id: int
    deadline: float  # time.monotonic() past which the lease is no longer renewed


class LeaseKeeper:
    """The heartbeat of one worker process: renews the leases of the steps it runs."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, *, token: str, step_id: int, deadline: float) -> None:
        with self._lock:
            self._held[token] = _Held(step_id=step_id, deadline=deadline)

    def release(self, *, token: str) -> None:
        with self._lock:
            self._held.pop(token, None)

    def renew(self, *, now: float | None = None) -> int:
        """Renew the leases of the steps still within their time limit; the others are let go,
        so their lease runs out and they can be taken over. Returns the leases renewed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for token, held in list(self._held.items()):
                if held.deadline <= now:
                    del self._held[token]
                    logger.warning(
                        "Step %s overran its time limit (PIPELINE_STEP_TIME_LIMIT=%s s): its lease is no longer "
                        "renewed, so another run takes it over once the lease runs out.",
                        held.step_id,
                        settings.PIPELINE_STEP_TIME_LIMIT,
                    )
            tokens = list(self._held)
        if not tokens:
            return 0
        return PipelineStep.objects.filter(lease_token__in=tokens, status=StepStatus.RUNNING).update(
            lease_expires_at=timezone.now() + lease_length()
        )

    def start(self) -> None:
        """Start the heartbeat thread unless it runs already."""
        with self._lock:
            # A forked child (prefork pool) inherits the object but not the thread.
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._beat, name="step-lease-heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        interval = settings.PIPELINE_LEASE_SECONDS / RENEWALS_PER_LEASE
        while True:
            time.sleep(interval)
            try:
                close_old_connections()
                self.renew()
            except Exception:
                # The heartbeat must outlive any error; a lease lasts RENEWALS_PER_LEASE beats,
                # so a busy database can make it miss a few.
                logger.warning("Could not renew the leases of running steps; trying again shortly.", exc_info=True)
                with contextlib.suppress(DatabaseError):
                    connection.close()


keeper = LeaseKeeper()


@contextmanager
def lease_kept(*, step: PipelineStep) -> Iterator[float]:
    """Keep the claimed step's lease alive while the block runs. Yields the step's deadline
    (a time.monotonic() value), past which the lease is no longer renewed."""
    deadline = time.monotonic() + settings.PIPELINE_STEP_TIME_LIMIT
    keeper.hold(token=step.lease_token, step_id=step.pk, deadline=deadline)
    keeper.start()
    try:
        yield deadline
    finally:
        keeper.release(token=step.lease_token)


def time_left_check(*, deadline: float, attempt_seconds: float) -> Callable[[], None]:
    """A check for the LLM client to run before each attempt: an attempt that could outlast
    the step's time limit is not started (the step fails, and may be retried later)."""

    def check() -> None:
        left = deadline - time.monotonic()
        if left < attempt_seconds:
            raise LlmCallError(
                f"The step's time limit (PIPELINE_STEP_TIME_LIMIT={settings.PIPELINE_STEP_TIME_LIMIT} s) leaves "
                f"{max(left, 0):.0f} s, less than one more attempt may take ({attempt_seconds:.0f} s); "
                "the step can be retried later.",
                kind=CallErrorKind.TIMEOUT,
                retryable=True,
            )

    return check
