"""The recovery pass: find the steps that lost their runner or their task message, and send
them again.

It runs when a worker starts (Celery's worker_ready), every PIPELINE_RECOVERY_INTERVAL_SECONDS
from Celery beat, and by hand (`manage.py recover_steps`). Any number of passes may run at
once: the claim keeps a step to one run however many messages it gets (a message for a step
that is done, or running under a live lease, is dropped).

What it finds, in batches that are neither paused (their resume enqueues their steps) nor
cancelled (their stranded steps are closed as FAILED, with no call):
- RUNNING steps whose lease has expired: their worker died, or they overran the step time
  limit. They become PENDING again and are enqueued.
- PENDING steps whose message was never sent (the broker refused it when their transaction
  committed): enqueued.
- PENDING steps whose message was lost. The filesystem broker deletes a message when a
  worker takes it, so a worker killed between taking a message and claiming its step loses
  it; Redis keeps it, but gives it back only after its visibility timeout (hours). When the
  generation queue is empty, no step enqueued more than the grace period ago can still be
  waiting in it: those steps are enqueued again.
- Batches whose start was lost (cases still PLANNED a grace period after the batch was
  created): started again.
- Batches marked running with no case in flight (a failure was recorded without counting it in
  its batch): recounted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from generation.models import (
    BATCH_HOLDING_STATUSES,
    BATCH_STARTABLE_STATUSES,
    IN_FLIGHT_STATUSES,
    BatchStatus,
    CaseStatus,
    GenerationBatch,
    PipelineStep,
    StepStatus,
)
from generation.services.batch_counters import batch_counters_recount
from generation.services.batches import batch_start
from generation.services.pipeline.steps import lease_expired, step_enqueue

logger = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    taken_over: list[int] = field(default_factory=list)
    never_sent: list[int] = field(default_factory=list)
    message_lost: list[int] = field(default_factory=list)
    closed_cancelled: int = 0
    batches_started: list[int] = field(default_factory=list)
    batches_recounted: list[int] = field(default_factory=list)

    @property
    def steps_enqueued(self) -> int:
        return len(self.taken_over) + len(self.never_sent) + len(self.message_lost)

    def __bool__(self) -> bool:
        return bool(self.steps_enqueued or self.closed_cancelled or self.batches_started or self.batches_recounted)

    def __str__(self) -> str:
        if not self:
            return "nothing to recover"
        parts = [
            f"{len(self.taken_over)} running step(s) whose lease expired {self.taken_over}",
            f"{len(self.never_sent)} pending step(s) never sent {self.never_sent}",
            f"{len(self.message_lost)} pending step(s) whose message was lost {self.message_lost}",
        ]
        summary = "enqueued again: " + "; ".join(parts)
        if self.closed_cancelled:
            summary += f"; {self.closed_cancelled} step(s) of cancelled batches closed"
        if self.batches_started:
            summary += f"; batch(es) started again: {self.batches_started}"
        if self.batches_recounted:
            summary += f"; batch(es) recounted: {self.batches_recounted}"
        return summary


def _steps_of_active_batches() -> QuerySet[PipelineStep]:
    # A paused batch's resume sends its steps; a cancelled one's are closed instead.
    return PipelineStep.objects.exclude(case__batch__status__in=BATCH_HOLDING_STATUSES)


def _cancelled_steps_close(*, now: datetime) -> int:
    stranded = PipelineStep.objects.filter(case__batch__status=BatchStatus.CANCELLED).filter(
        Q(status__in=[StepStatus.PENDING, StepStatus.BATCHED]) | lease_expired(now=now)
    )
    return stranded.update(
        status=StepStatus.FAILED,
        error="The batch was cancelled.",
        finished_at=now,
        updated_at=now,
        lease_token="",
        lease_expires_at=None,
    )


def _expired_steps_take_over(*, now: datetime) -> list[int]:
    """Expired RUNNING steps become PENDING (a compare-and-set on the lease read, so a run
    that renewed it meanwhile keeps it), then are enqueued."""
    taken = []
    expired = _steps_of_active_batches().filter(lease_expired(now=now))
    for step_id, token in expired.values_list("pk", "lease_token"):
        released = PipelineStep.objects.filter(lease_expired(now=now), pk=step_id, lease_token=token).update(
            status=StepStatus.PENDING, lease_token="", lease_expires_at=None, updated_at=now
        )
        if released and step_enqueue(step_id=step_id):
            taken.append(step_id)
    return taken


def _pending_steps_resend(
    *, now: datetime, grace: timedelta, generation_queue_size: int | None
) -> tuple[list[int], list[int]]:
    pending = _steps_of_active_batches().filter(status=StepStatus.PENDING, created_at__lt=now - grace)
    never_sent = [
        step_id
        for step_id in pending.filter(enqueued_at__isnull=True).values_list("pk", flat=True)
        if step_enqueue(step_id=step_id)
    ]
    if generation_queue_size != 0:
        return never_sent, []  # messages wait in the queue (or the broker cannot say): nothing is known lost
    lost = [
        step_id
        for step_id in pending.filter(enqueued_at__lt=now - grace).values_list("pk", flat=True)
        if step_enqueue(step_id=step_id)
    ]
    return never_sent, lost


def _lost_starts_restart(*, now: datetime, grace: timedelta) -> list[int]:
    stuck = GenerationBatch.objects.filter(
        status__in=BATCH_STARTABLE_STATUSES, created_at__lt=now - grace, cases__status=CaseStatus.PLANNED
    )
    restarted = []
    for batch_id in stuck.values_list("pk", flat=True).distinct():
        if batch_start(batch_id=batch_id):
            restarted.append(batch_id)
    return restarted


def _finished_batches_recount() -> list[int]:
    settled = GenerationBatch.objects.filter(status=BatchStatus.RUNNING).exclude(cases__status__in=IN_FLIGHT_STATUSES)
    recounted = list(settled.values_list("pk", flat=True))
    for batch_id in recounted:
        batch_counters_recount(batch_id=batch_id)
    return recounted


def pipeline_recover(*, generation_queue_size: int | None) -> RecoveryReport:
    """One recovery pass. `generation_queue_size` is how many messages wait in the broker's
    generation queue (None when the broker cannot say: lost messages are then not looked for)."""
    now = timezone.now()
    grace = timedelta(seconds=settings.PIPELINE_RECOVERY_GRACE_SECONDS)
    report = RecoveryReport(closed_cancelled=_cancelled_steps_close(now=now))
    report.taken_over = _expired_steps_take_over(now=now)
    report.never_sent, report.message_lost = _pending_steps_resend(
        now=now, grace=grace, generation_queue_size=generation_queue_size
    )
    report.batches_started = _lost_starts_restart(now=now, grace=grace)
    report.batches_recounted = _finished_batches_recount()
    if report:
        logger.warning("Recovery pass: %s.", report)
    else:
        logger.debug("Recovery pass: nothing to recover.")
    return report
