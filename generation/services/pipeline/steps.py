"""The life of one agent step: created (and enqueued once committed), claimed by one run
under a lease (see leases), then succeeded or failed by that run and no other."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from generation.models import ArtefactVersion, Case, CaseStatus, PipelineStep, ProviderBatch, StepStatus
from generation.services.cases import case_lock_and_last, case_transition
from generation.services.pipeline.leases import StepLeaseLost, lease_length, this_process

logger = logging.getLogger(__name__)


def step_enqueue(*, step_id: int) -> bool:
    """Send the step's task message and note when. False when the broker refused it: the
    step stays PENDING without a message, and the recovery pass sends it later."""
    return steps_enqueue(step_ids=[step_id]) == 1


def steps_enqueue(*, step_ids: list[int], noted: bool = False) -> int:
    """step_enqueue for many steps, through one broker connection, noting when in one write:
    how many messages were sent. `noted`: the steps were written with the time their message
    would be sent (step_create), so only a message the broker refused is written down, as
    never sent."""
    from generation.tasks import run_pipeline_step  # the task module imports this one

    sent, refused = [], []
    with run_pipeline_step.app.producer_or_acquire() as producer:
        for step_id in step_ids:
            try:
                run_pipeline_step.apply_async((step_id,), producer=producer)
            except Exception:
                logger.exception("Could not enqueue step %s; the recovery pass will send it again.", step_id)
                refused.append(step_id)
                continue
            sent.append(step_id)
    pending = PipelineStep.objects.filter(status=StepStatus.PENDING)
    if sent and not noted:
        pending.filter(pk__in=sent).update(enqueued_at=timezone.now())
    if refused and noted:
        pending.filter(pk__in=refused).update(enqueued_at=None)
    return len(sent)


def step_create(*, case: Case, agent: str, feedback: str = "", requested_by: User | None = None) -> PipelineStep:
    """The next attempt of `agent` for `case`, enqueued once the transaction commits. The step
    is written with the time its message goes out, which saves a write per step; should the
    broker refuse it, steps_enqueue writes it down as never sent."""
    with transaction.atomic(savepoint=False):
        same_agent = PipelineStep.objects.filter(case=OuterRef("pk"), agent=agent)
        last = case_lock_and_last(case_id=case.pk, rows=same_agent, field="attempt").last
        step = PipelineStep.objects.create(
            case=case,
            agent=agent,
            attempt=last + 1,
            feedback=feedback,
            requested_by=requested_by,
            enqueued_at=timezone.now(),
        )
        transaction.on_commit(lambda: steps_enqueue(step_ids=[step.pk], noted=True))
    return step


def first_steps_create(*, case_ids: list[int], agent: str) -> list[int]:
    """step_create for many cases that the caller holds locked, in one INSERT, none enqueued
    (the caller sends them through steps_enqueue): the ids of the new steps."""
    attempts = PipelineStep.objects.filter(case_id__in=case_ids, agent=agent).values("case_id")
    last = dict(attempts.annotate(n=Max("attempt")).values_list("case_id", "n"))
    steps = PipelineStep.objects.bulk_create(
        PipelineStep(case_id=case_id, agent=agent, attempt=last.get(case_id, 0) + 1) for case_id in case_ids
    )
    return [step.pk for step in steps]


def lease_expired(*, now: datetime) -> Q:
    """RUNNING steps whose run is gone or overran: they may be taken over (a step left
    RUNNING before leases existed has none)."""
    return Q(status=StepStatus.RUNNING) & (Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))


def step_claimable(*, now: datetime) -> Q:
    """Steps a run may claim: waiting, or running under a lease that ran out."""
    return Q(status=StepStatus.PENDING) | lease_expired(now=now)


def step_for_run(*, step_id: int) -> PipelineStep | None:
    """The step with what a run of it reads (its case, batch, endpoint, code, role and survey
    snapshot), in one query; None when there is no such step. (get() leaves out the model's
    ordering, which would join and sort for a single row.)"""
    related = ("case__batch__endpoint", "case__code", "case__role", "case__survey_snapshot", "requested_by")
    try:
        return PipelineStep.objects.select_related(*related).get(pk=step_id)
    except PipelineStep.DoesNotExist:
        return None


def step_claim_read(*, step: PipelineStep, task_id: str, reserved_cost: Decimal = Decimal(0)) -> bool:
    """Claim the step as step_for_run read it: True when it is now RUNNING under a fresh lease
    held by this run, False when this message has nothing to do.

    A PENDING step is claimed; so is a RUNNING step whose lease has expired (its worker
    died, or it overran its time limit): this run takes it over. While the lease is live,
    any other message for the step (a redelivery, a copy sent by the recovery pass) is
    dropped, so one agent never runs twice at once for the same step. The UPDATE is also
    conditional on the claim count read, so a run claims the step it read and no later
    state of it. `reserved_cost` is what the run holds against its batch's budget cap
    (see budget).
    """
    now = timezone.now()
    fields = {**_claim_fields(now=now, task_id=task_id), "claim_count": step.claim_count + 1}
    claimed = PipelineStep.objects.filter(step_claimable(now=now), pk=step.pk, claim_count=step.claim_count).update(
        **fields, reserved_cost=reserved_cost
    )
    if not claimed:
        return False
    for name, value in fields.items():
        setattr(step, name, value)
    step.reserved_cost = reserved_cost
    return True


def step_claim(*, step_id: int, task_id: str, reserved_cost: Decimal = Decimal(0)) -> PipelineStep | None:
    """The step, now RUNNING under a fresh lease held by this run (see step_claim_read); None
    when this message has nothing to do."""
    step = step_for_run(step_id=step_id)
    if step is None or not step_claim_read(step=step, task_id=task_id, reserved_cost=reserved_cost):
        return None
    return step


def _held_by_this_run(step: PipelineStep) -> QuerySet[PipelineStep]:
    return PipelineStep.objects.filter(pk=step.pk, status=StepStatus.RUNNING, lease_token=step.lease_token)


def _claim_fields(*, now: datetime, task_id: str) -> dict[str, Any]:
    return {
        "status": StepStatus.RUNNING,
        "started_at": now,
        "updated_at": now,
        "task_id": task_id,
        "lease_token": uuid.uuid4().hex,
        "lease_owner": this_process(),
        "lease_expires_at": now + lease_length(),
    }


# --- Provider-batch mode: a step waits BATCHED between its run that wrote its request and
# the run that reads the provider batch's reply (generation.services.pipeline.provider_batches).


def step_batch_wait(*, step: PipelineStep, request_body: dict[str, Any]) -> None:
    """The claimed step's request goes into the next provider batch of its agent: the step
    waits BATCHED, held by no run. Raises StepLeaseLost when this run no longer holds it."""
    now = timezone.now()
    waiting = _held_by_this_run(step).update(
        status=StepStatus.BATCHED,
        batch_request=request_body,
        provider_batch=None,
        updated_at=now,
        lease_token="",
        lease_expires_at=None,
    )
    if not waiting:
        raise StepLeaseLost(f"step {step} was taken over by another run; its request is not stored")


def in_provider_batch(*, step_id: int, provider_batch: ProviderBatch) -> QuerySet[PipelineStep]:
    """The step, while it waits for this provider batch's reply (and for nothing else)."""
    return PipelineStep.objects.filter(pk=step_id, status=StepStatus.BATCHED, provider_batch=provider_batch)


def step_batch_take(*, step_id: int, provider_batch: ProviderBatch) -> PipelineStep | None:
    """Claim a step that waits for `provider_batch`, as step_claim claims a pending one (to
    fail it: its lines failed too often); None when it waits no more."""
    now = timezone.now()
    if not in_provider_batch(step_id=step_id, provider_batch=provider_batch).update(
        **_claim_fields(now=now, task_id="provider-batch"), claim_count=F("claim_count") + 1
    ):
        return None
    return PipelineStep.objects.select_related("case").get(pk=step_id)


def step_succeed(*, step: PipelineStep, result: dict[str, Any], version: ArtefactVersion | None = None) -> None:
    """Mark the claimed step done. Raises StepLeaseLost when this run no longer holds it,
    which rolls back the transaction its output and next step were written in."""
    now = timezone.now()
    done = _held_by_this_run(step).update(
        status=StepStatus.SUCCEEDED,
        result=result,
        output_version=version,
        finished_at=now,
        updated_at=now,
        error="",
        lease_expires_at=None,
    )
    if not done:
        raise StepLeaseLost(f"step {step} was taken over by another run; this run's output is not stored")
    step.status, step.result, step.output_version, step.finished_at = StepStatus.SUCCEEDED, result, version, now


def _failure_record(*, step: PipelineStep, message: str, fail_case: bool, counted: bool) -> None:
    with transaction.atomic():
        now = timezone.now()
        failed = _held_by_this_run(step).update(
            status=StepStatus.FAILED, error=message, finished_at=now, updated_at=now, lease_expires_at=None
        )
        if not failed:
            raise StepLeaseLost(f"step {step} was taken over by another run; its failure is not recorded")
        case = Case.objects.select_for_update().get(pk=step.case_id)
        if fail_case and case.can_transition_to(CaseStatus.FAILED):
            error = f"{step.get_agent_display()}: {message}"
            case_transition(case=case, to=CaseStatus.FAILED, error=error, counted=counted)
    step.status, step.error, step.finished_at = StepStatus.FAILED, message, now


def step_fail(*, step: PipelineStep, message: str, fail_case: bool = True) -> None:
    """End the claimed step as FAILED and, when `fail_case`, its case too. A run that lost
    its lease records nothing: the step is another run's now.

    Recording a failure never strands the step. When it raises (a lock timeout, a batch
    counter that cannot be written), the step and its case are failed without moving the
    batch's counters, which the recovery pass recounts later; when even that raises, the step stays
    RUNNING, its lease runs out, and the recovery pass runs it again.
    """
    # PostgreSQL text cannot hold NUL, which a provider's error body may carry.
    message = message.replace("\x00", "")
    try:
        _failure_record(step=step, message=message, fail_case=fail_case, counted=True)
        return
    except StepLeaseLost:
        logger.info("Step %s: not recording its failure, another run holds it now.", step)
        return
    except Exception:
        logger.exception("Recording the failure of step %s failed; failing it without counting it in its batch.", step)
    try:
        _failure_record(step=step, message=message, fail_case=fail_case, counted=False)
    except StepLeaseLost:
        logger.info("Step %s: not recording its failure, another run holds it now.", step)
    except Exception:
        logger.exception("Step %s could not be failed; it is run again once its lease runs out.", step)


def steps_release_worker(*, owner: str) -> int:
    """A worker process that has stopped holds no step any more: let the leases of the steps
    it was running run out now, so the next recovery pass sends them again. Returns how many
    steps it was running (`make run` reports them as interrupted)."""
    now = timezone.now()
    return PipelineStep.objects.filter(status=StepStatus.RUNNING, lease_owner=owner).update(
        lease_expires_at=now, updated_at=now
    )
