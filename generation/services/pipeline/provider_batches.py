"""Provider Batch API mode: the same pipeline, its agent calls sent as provider batches.

A step of a batch in provider-batch mode runs as any step does, up to its agent's call:
there its request is stored and the step waits BATCHED (`AwaitingProviderBatch`). A
periodic pass (`provider_batches_tick`, on Celery beat) then, for each agent of each
generation batch:

- flushes the waiting steps as one provider batch once `flush_lines` wait or the oldest
  has waited `flush_seconds` (a step sent again after a failed line goes at once). The
  ProviderBatch row and its lines are written first; the input file (custom_id = the
  step's idempotency key) is uploaded and the provider batch created after, each id stored
  as soon as it is known. A send that died part way is finished by the next pass, which
  first looks for a batch already created under the row's submission token (in the batch's
  metadata), so no step is ever submitted twice;
- polls the provider batches in progress and, once one has ended, reads its output and
  error files: a line's reply is stored on its line and its step enqueued again, and that
  run reads the reply through the same code as a realtime reply (structured_completion:
  validation, one repair attempt sent realtime, the AgentCall row, the version, the next
  step). A line that failed or expired sends its step in the next provider batch, or
  realtime when the batch asks for it, until PROVIDER_BATCH_LINE_ATTEMPTS lines of it have
  failed: then the step fails as a realtime step does;
- cancels at the provider the provider batches of a cancelled generation batch.

A reviewer's regeneration runs realtime (the reviewer does not wait hours), and so does a
step whose endpoint no longer offers the Batch API.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from generation.llm import BatchReply, CompletionRequest, batch_api, batch_reply_record_unused
from generation.llm.client import AttemptFailed
from generation.models import (
    BATCH_HOLDING_STATUSES,
    LINE_RETRY_STATUSES,
    PROVIDER_BATCH_OPEN_STATUSES,
    AgentCall,
    AgentName,
    BatchStatus,
    ExecutionMode,
    GenerationBatch,
    LineStatus,
    PipelineStep,
    ProviderBatch,
    ProviderBatchLine,
    ProviderBatchStatus,
    StepStatus,
)
from generation.services.pipeline.config import AGENT_MODULES, PipelineConfig, batch_endpoint, pipeline_config
from generation.services.pipeline.steps import in_provider_batch, step_batch_take, step_enqueue, step_fail

logger = logging.getLogger(__name__)

# Sends of one provider batch (each on its own pass) before its lines count as failed: a
# provider that refuses the batch (a bad key, a malformed file) fails its steps, not forever.
MAX_SEND_ATTEMPTS = 5
# The metadata key of a provider batch's submission token.
TOKEN_KEY = "medsynth_submission"  # noqa: S105 - a metadata key, not a secret
FINAL_STATUS = {
    "completed": ProviderBatchStatus.COMPLETED,
    "expired": ProviderBatchStatus.EXPIRED,
    "failed": ProviderBatchStatus.FAILED,
    "cancelled": ProviderBatchStatus.CANCELLED,
}


class AwaitingProviderBatch(Exception):
    """The agent's request goes into the next provider batch instead of being sent now."""

    def __init__(self, request: CompletionRequest) -> None:
        super().__init__("the request waits for a provider batch")
        self.request = request


def runs_in_provider_batch(*, step: PipelineStep, config: PipelineConfig) -> bool:
    """Whether the step's agent call goes into a provider batch: its batch runs in batch mode
    on an endpoint that offers the Batch API, it is no reviewer's regeneration, and no line of
    it has failed when the batch asks for failed lines to be retried realtime."""
    if config.execution != ExecutionMode.PROVIDER_BATCH or step.requested_by_id is not None:
        return False
    endpoint = batch_endpoint(step.case.batch)
    if endpoint is None or not endpoint.supports_batch_api:
        return False
    return not (config.retry_realtime and step.batch_lines.filter(status__in=LINE_RETRY_STATUSES).exists())


def received_batch_reply(*, step: PipelineStep) -> BatchReply | None:
    """The reply a provider batch brought for this step, if one did."""
    if step.batch_request is None:
        return None
    line = step.batch_lines.filter(status=LineStatus.RECEIVED).select_related("provider_batch").first()
    if line is None or line.response is None:
        return None
    return BatchReply(
        request=CompletionRequest.from_body(step.batch_request),
        reply=batch_api.reply_from_line(line.response),
        provider_batch=line.provider_batch,
        custom_id=line.custom_id,
    )


@dataclass
class TickReport:
    submitted: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    replies: int = 0
    lines_retried: int = 0
    steps_failed: int = 0
    errors: list[str] = field(default_factory=list)


# --- The pass ---------------------------------------------------------------------------


def provider_batches_tick(*, now: datetime | None = None) -> TickReport:
    """One pass: send what is prepared, poll what is in progress, flush what is ready.

    Any number of passes may run at once: each provider batch is held by one pass at a time,
    and a step joins a provider batch by a compare-and-set."""
    report = TickReport()
    for provider_batch in ProviderBatch.objects.filter(status=ProviderBatchStatus.PREPARING).order_by("pk"):
        _held(provider_batch, _send, report)
    for provider_batch in ProviderBatch.objects.filter(status=ProviderBatchStatus.IN_PROGRESS).order_by("pk"):
        _held(provider_batch, _poll, report)
    for provider_batch in _flush_ready_steps(now=now or timezone.now()):
        _held(provider_batch, _send, report)
    if report.submitted or report.finished or report.errors:
        logger.info("Provider batches: %s", report)
    return report


def _held(provider_batch: ProviderBatch, work: Callable[[ProviderBatch, TickReport], None], report: TickReport) -> None:
    """Run `work` on the provider batch while this pass holds it. A provider's error is
    stored and the batch tried again on the next pass; a pass killed part way holds the
    batch until its lease runs out, then the next pass finishes the work."""
    now = timezone.now()
    lease = timedelta(seconds=settings.PROVIDER_BATCH_LEASE_SECONDS)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    if not ProviderBatch.objects.filter(free, pk=provider_batch.pk).update(lease_expires_at=now + lease):
        return
    provider_batch.refresh_from_db()
    try:
        work(provider_batch, report)
        error = ""
    except AttemptFailed as failure:
        error = f"{failure} (tried again on the next pass)"
        report.errors.append(f"provider batch {provider_batch.pk}: {error}")
        logger.warning("Provider batch %s: %s", provider_batch.pk, error)
    except Exception as failure:
        error = f"internal error: {type(failure).__name__}: {failure} (tried again on the next pass)"
        report.errors.append(f"provider batch {provider_batch.pk}: {error}")
        logger.exception("Provider batch %s failed", provider_batch.pk)
    held = ProviderBatch.objects.filter(pk=provider_batch.pk)
    held.update(lease_expires_at=None)
    # A finished batch keeps the error it ended with; an open one shows the last pass's.
    held.filter(status__in=PROVIDER_BATCH_OPEN_STATUSES).update(error=error)


# --- Flushing waiting steps into a new provider batch --------------------------------------


def _waiting_steps() -> QuerySet[PipelineStep]:
    """Steps waiting for a provider batch in generation batches that may call the model."""
    return (
        PipelineStep.objects.filter(status=StepStatus.BATCHED, provider_batch__isnull=True)
        .exclude(case__batch__status__in=BATCH_HOLDING_STATUSES)
        .order_by("pk")
    )


def _due(*, steps: list[tuple[int, datetime, bool]], config: PipelineConfig, now: datetime) -> bool:
    oldest = min(waited_since for _, waited_since, _ in steps)
    return (
        len(steps) >= config.flush_lines
        or oldest <= now - timedelta(seconds=config.flush_seconds)
        or any(retry for _, _, retry in steps)
    )


def _flush_ready_steps(*, now: datetime) -> list[ProviderBatch]:
    groups: dict[tuple[int, str], list[tuple[int, datetime, bool]]] = defaultdict(list)
    # `retry`: the step was in a provider batch before (it goes again at once).
    waiting = _waiting_steps().annotate(retry=Exists(ProviderBatchLine.objects.filter(step=OuterRef("pk"))))
    for batch_id, agent, step_id, waited_since, retry in waiting.values_list(
        "case__batch_id", "agent", "pk", "updated_at", "retry"
    ):
        groups[(batch_id, agent)].append((step_id, waited_since, retry))
    opened = []
    for (batch_id, agent), steps in groups.items():
        generation_batch = GenerationBatch.objects.select_related("endpoint").get(pk=batch_id)
        if not _due(steps=steps, config=pipeline_config(batch=generation_batch), now=now):
            continue
        step_ids = [step_id for step_id, _, _ in steps]
        for start in range(0, len(step_ids), settings.PROVIDER_BATCH_MAX_LINES):
            chunk = step_ids[start : start + settings.PROVIDER_BATCH_MAX_LINES]
            provider_batch = _provider_batch_open(generation_batch=generation_batch, agent=agent, step_ids=chunk)
            if provider_batch is not None:
                opened.append(provider_batch)
    return opened


def _provider_batch_open(*, generation_batch: GenerationBatch, agent: str, step_ids: list[int]) -> ProviderBatch | None:
    """Record the intent before anything is sent: the row, its lines, and each step's place
    in it (a step joins only while it waits for no other provider batch)."""
    endpoint = batch_endpoint(generation_batch)
    if endpoint is None:
        return None
    with transaction.atomic():
        provider_batch = ProviderBatch.objects.create(
            generation_batch=generation_batch,
            agent=agent,
            endpoint=endpoint,
            model=generation_batch.model or endpoint.default_model,
            submission_token=uuid.uuid4().hex,
        )
        PipelineStep.objects.filter(pk__in=step_ids, status=StepStatus.BATCHED, provider_batch__isnull=True).update(
            provider_batch=provider_batch
        )
        joined = list(PipelineStep.objects.filter(provider_batch=provider_batch).order_by("pk"))
        if not joined:
            transaction.set_rollback(True)
            return None
        ProviderBatchLine.objects.bulk_create(
            ProviderBatchLine(provider_batch=provider_batch, step=step, custom_id=step.idempotency_key)
            for step in joined
        )
        ProviderBatch.objects.filter(pk=provider_batch.pk).update(line_count=len(joined))
    return provider_batch


# --- Sending ------------------------------------------------------------------------------


def _send(provider_batch: ProviderBatch, report: TickReport) -> None:
    """Upload the input file and create the provider batch, storing each id at once. A
    batch that an earlier send may have created is looked for first."""
    status = provider_batch.generation_batch.status
    if status == BatchStatus.PAUSED:
        return  # sent once the batch is resumed
    endpoint = provider_batch.endpoint
    attempts = provider_batch.send_attempts + 1
    ProviderBatch.objects.filter(pk=provider_batch.pk).update(send_attempts=attempts)
    if attempts > 1:
        found = batch_api.batch_find(endpoint=endpoint, key=TOKEN_KEY, value=provider_batch.submission_token)
        if found is not None:
            provider_batch_id_store(provider_batch, found)
            report.submitted.append(provider_batch.pk)
            return
    if status == BatchStatus.CANCELLED or provider_batch.cancel_requested:
        _lines_close(provider_batch, status=LineStatus.CANCELLED, error="The batch was cancelled before it was sent.")
        _provider_batch_finish(provider_batch, status=ProviderBatchStatus.CANCELLED)
        return
    if attempts > MAX_SEND_ATTEMPTS:
        _send_give_up(provider_batch, report)
        return
    if not provider_batch.input_file_id:
        lines = provider_batch.lines.select_related("step").order_by("pk")
        content = batch_api.jsonl_lines([(line.custom_id, line.step.batch_request or {}) for line in lines])
        name = f"medsynth-{provider_batch.generation_batch_id}-{provider_batch.agent}-{provider_batch.pk}.jsonl"
        provider_batch.input_file_id = batch_api.file_upload(endpoint=endpoint, name=name, content=content)
        ProviderBatch.objects.filter(pk=provider_batch.pk).update(input_file_id=provider_batch.input_file_id)
    state = batch_api.batch_create(
        endpoint=endpoint,
        input_file_id=provider_batch.input_file_id,
        completion_window=settings.PROVIDER_BATCH_COMPLETION_WINDOW,
        metadata={
            TOKEN_KEY: provider_batch.submission_token,
            "generation_batch": str(provider_batch.generation_batch_id),
            "agent": provider_batch.agent,
        },
    )
    provider_batch_id_store(provider_batch, state)
    report.submitted.append(provider_batch.pk)


def _send_give_up(provider_batch: ProviderBatch, report: TickReport) -> None:
    """The provider refused the batch every time: its lines failed (their steps go in the
    next provider batch within their budget, as a failed line's do)."""
    error = f"The provider batch could not be submitted in {MAX_SEND_ATTEMPTS} attempts: {provider_batch.error}"
    config = pipeline_config(batch=provider_batch.generation_batch)
    for line in provider_batch.lines.filter(status=LineStatus.SUBMITTED).order_by("pk"):
        result = batch_api.BatchLineResult(custom_id=line.custom_id, response=None, error=error)
        failed = _line_unfinished(line, provider_batch=provider_batch, result=result, config=config)
        report.steps_failed += int(failed)
        report.lines_retried += int(not failed)
    _provider_batch_finish(provider_batch, status=ProviderBatchStatus.FAILED)


def provider_batch_id_store(provider_batch: ProviderBatch, state: batch_api.ProviderBatchState) -> None:
    """The provider batch exists: from now on it is polled, never created again."""
    now = timezone.now()
    ProviderBatch.objects.filter(pk=provider_batch.pk).update(
        provider_batch_id=state.id,
        input_file_id=state.input_file_id or provider_batch.input_file_id,
        status=ProviderBatchStatus.IN_PROGRESS,
        provider_status=state.status,
        submitted_at=now,
        updated_at=now,
    )


# --- Polling and collecting ---------------------------------------------------------------


def _poll(provider_batch: ProviderBatch, report: TickReport) -> None:
    endpoint, provider_id = provider_batch.endpoint, provider_batch.provider_batch_id
    cancel = provider_batch.cancel_requested or provider_batch.generation_batch.status == BatchStatus.CANCELLED
    if cancel and provider_batch.provider_status not in {"cancelling", *batch_api.PROVIDER_FINAL_STATUSES}:
        _cancel_at_provider(provider_batch)
    state = batch_api.batch_retrieve(endpoint=endpoint, provider_batch_id=provider_id)
    ProviderBatch.objects.filter(pk=provider_batch.pk).update(
        provider_status=state.status,
        output_file_id=state.output_file_id,
        error_file_id=state.error_file_id,
        updated_at=timezone.now(),
    )
    if not state.finished:
        return
    results = {}
    for file_id in (state.output_file_id, state.error_file_id):
        if file_id:
            for result in batch_api.batch_lines(batch_api.file_text(endpoint=endpoint, file_id=file_id)):
                results[result.custom_id] = result
    _collect(provider_batch, state=state, results=results, report=report)
    report.finished.append(provider_batch.pk)


def _cancel_at_provider(provider_batch: ProviderBatch) -> None:
    try:
        batch_api.batch_cancel(endpoint=provider_batch.endpoint, provider_batch_id=provider_batch.provider_batch_id)
    except AttemptFailed as failure:
        if failure.transient:
            raise
        # Refused: the batch ended meanwhile (what it brought is collected as usual).
        logger.info("Provider batch %s was not cancelled: %s", provider_batch.pk, failure)


def _collect(
    provider_batch: ProviderBatch,
    *,
    state: batch_api.ProviderBatchState,
    results: dict[str, batch_api.BatchLineResult],
    report: TickReport,
) -> None:
    """Each line still submitted gets its outcome; lines already settled (by an earlier
    pass that died part way) are left as they are."""
    config = pipeline_config(batch=provider_batch.generation_batch)
    for line in provider_batch.lines.filter(status=LineStatus.SUBMITTED).select_related("step__case").order_by("pk"):
        result = results.get(line.custom_id)
        if result is None:
            unfinished = state.status in ("expired", "cancelled")
            why = f"The provider batch ended {state.status} without this line"
            result = batch_api.BatchLineResult(
                custom_id=line.custom_id,
                response=None,
                error=f"{why}: {state.errors}" if state.errors else f"{why}.",
                expired=unfinished,
            )
        elif result.succeeded:
            result = _readable(result)
        if result.succeeded:
            _line_received(line, provider_batch=provider_batch, response=result.response or {})
            report.replies += 1
        else:
            failed = _line_unfinished(line, provider_batch=provider_batch, result=result, config=config)
            report.steps_failed += int(failed)
            report.lines_retried += int(not failed)
    _provider_batch_finish(provider_batch, status=FINAL_STATUS.get(state.status, ProviderBatchStatus.FAILED))


def _readable(result: batch_api.BatchLineResult) -> batch_api.BatchLineResult:
    """A 200 line whose body is no completion counts as a failed line (it is sent again)."""
    try:
        batch_api.reply_from_line(result.response or {})
    except batch_api.BatchLineUnreadable as error:
        return batch_api.BatchLineResult(custom_id=result.custom_id, response=result.response, error=str(error))
    return result


def _line_received(line: ProviderBatchLine, *, provider_batch: ProviderBatch, response: dict[str, Any]) -> None:
    """Keep the reply on its line, and send the step to a run that reads it."""
    with transaction.atomic():
        ProviderBatchLine.objects.filter(pk=line.pk, status=LineStatus.SUBMITTED).update(
            status=LineStatus.RECEIVED, response=response, updated_at=timezone.now()
        )
        ready = in_provider_batch(step_id=line.step_id, provider_batch=provider_batch).update(
            status=StepStatus.PENDING, updated_at=timezone.now()
        )
        if ready:
            transaction.on_commit(partial(step_enqueue, step_id=line.step_id))
    if not ready:
        step = line.step
        why = f"the step no longer waited for it ({step.get_status_display().lower()})"
        _unused_reply_record(line, provider_batch=provider_batch, response=response, why=why)


def unread_batch_reply_record(*, step: PipelineStep) -> None:
    """After a run: a reply the step ended without reading (the judge's near-duplicate check
    rejected the scenario first, or the case moved on) is billed, so it is recorded."""
    if step.batch_request is None:
        return
    line = step.batch_lines.filter(status=LineStatus.RECEIVED).select_related("provider_batch__endpoint").first()
    if line is None or AgentCall.objects.filter(step=step, provider_batch=line.provider_batch).exists():
        return
    why = "the step ended without reading it"
    _unused_reply_record(line, provider_batch=line.provider_batch, response=line.response or {}, why=why)


def _unused_reply_record(
    line: ProviderBatchLine, *, provider_batch: ProviderBatch, response: dict[str, Any], why: str
) -> None:
    """A reply no step reads: the provider bills it, so it is recorded and priced."""
    step = line.step
    if step.batch_request is None:
        return
    batch_reply_record_unused(
        endpoint=provider_batch.endpoint,
        batch_reply=BatchReply(
            request=CompletionRequest.from_body(step.batch_request),
            reply=batch_api.reply_from_line(response),
            provider_batch=provider_batch,
            custom_id=line.custom_id,
        ),
        agent=step.agent,
        prompt_version=AGENT_MODULES[AgentName(step.agent)].PROMPT_VERSION,
        case=step.case,
        step=step,
        reason=f"Not used: {why}.",
    )


def _line_unfinished(
    line: ProviderBatchLine,
    *,
    provider_batch: ProviderBatch,
    result: batch_api.BatchLineResult,
    config: PipelineConfig,
) -> bool:
    """The line failed or expired: its step goes in the next provider batch (or realtime)
    within its budget of lines, and fails past it. Returns True when the step failed."""
    status = LineStatus.EXPIRED if result.expired else LineStatus.FAILED
    with transaction.atomic():
        ProviderBatchLine.objects.filter(pk=line.pk, status=LineStatus.SUBMITTED).update(
            status=status, response=result.response, error=result.error, updated_at=timezone.now()
        )
        spent = ProviderBatchLine.objects.filter(step_id=line.step_id, status__in=LINE_RETRY_STATUSES).count()
        if spent < settings.PROVIDER_BATCH_LINE_ATTEMPTS:
            again = {"status": StepStatus.PENDING} if config.retry_realtime else {}
            moved = in_provider_batch(step_id=line.step_id, provider_batch=provider_batch).update(
                provider_batch=None, updated_at=timezone.now(), **again
            )
            if moved and config.retry_realtime:
                transaction.on_commit(partial(step_enqueue, step_id=line.step_id))
            return False
    step = step_batch_take(step_id=line.step_id, provider_batch=provider_batch)
    if step is not None:
        step_fail(step=step, message=f"{spent} provider batch line(s) of this step failed; the last: {result.error}")
    return step is not None


def _lines_close(provider_batch: ProviderBatch, *, status: str, error: str) -> None:
    """Lines that will never be sent; their steps wait for the next provider batch (a
    cancelled batch's steps were failed by the cancel)."""
    with transaction.atomic():
        provider_batch.lines.filter(status=LineStatus.SUBMITTED).update(status=status, error=error)
        PipelineStep.objects.filter(provider_batch=provider_batch, status=StepStatus.BATCHED).update(
            provider_batch=None
        )


def _provider_batch_finish(provider_batch: ProviderBatch, *, status: str) -> None:
    lines = provider_batch.lines
    now = timezone.now()
    ProviderBatch.objects.filter(pk=provider_batch.pk).update(
        status=status,
        succeeded_count=lines.filter(status=LineStatus.RECEIVED).count(),
        failed_count=lines.exclude(status=LineStatus.RECEIVED).count(),
        completed_at=now,
        updated_at=now,
    )


# --- Cancelling ---------------------------------------------------------------------------


def provider_batches_cancel(*, generation_batch_id: int) -> int:
    """The generation batch was cancelled: its open provider batches are cancelled at the
    provider by the next pass. Returns how many."""
    return ProviderBatch.objects.filter(
        generation_batch_id=generation_batch_id, status__in=PROVIDER_BATCH_OPEN_STATUSES
    ).update(cancel_requested=True, updated_at=timezone.now())
