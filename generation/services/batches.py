"""Planning and launching generation batches, and creating imported ones.

Everything a batch needs is checked before its first row is written: the codes exist,
the endpoint's key is set and it serves the model. Planning is idempotent (a case is
(batch, code, slot)), and starting a batch enqueues the first step of every planned case.
An imported batch holds pairs written elsewhere: its cases go straight to the final
pair review.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from itertools import islice
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from generation import rendering, selectors
from generation.checks import version_check_flags
from generation.errors import DomainError
from generation.llm import LlmConfigError, endpoint_preflight
from generation.models import (
    BATCH_STARTABLE_STATUSES,
    CASE_TRANSITIONS,
    EXECUTION_CONFIG_KEY,
    ArtefactKind,
    BatchKind,
    BatchStatus,
    Case,
    CaseStatus,
    ExecutionMode,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    PauseReason,
    PhysicianRole,
    PipelineStep,
    StepStatus,
    VersionSource,
)
from generation.models.text_limits import BATCH_NAME_MAX_CHARS, TextTooLong, text_within_limit
from generation.services.batch_counters import batch_counters_recount, batch_status_settle
from generation.services.cases import (
    NewCase,
    artefact_version_draft,
    cases_transition,
    cases_with_versions_create,
)
from generation.services.code_selection import (
    BatchPlanError as BatchPlanError,  # raised here too; its callers know it from this module
)
from generation.services.code_selection import (
    CodeSelection,
    PlannedCode,
    TopUp,
    codes_plan,
    codes_select,
    split_list,
)
from generation.services.estimates import BatchEstimate, batch_estimate
from generation.services.pipeline import (
    GATE_STAGES,
    case_retry,
    cases_start,
)
from generation.services.pipeline.budget import budget_fits_next_step
from generation.services.pipeline.provider_batches import provider_batches_cancel
from generation.services.pipeline.steps import step_enqueue, steps_enqueue

logger = logging.getLogger(__name__)

MAX_PAIRS_PER_CODE = 100
# GenerationBatch.budget's largest value (12 digits, 4 after the point).
MAX_BUDGET = Decimal(100_000_000)
MAX_CASES_PER_BATCH = 50_000
# Rows per transaction of a long write (an import, a cancel). On SQLite a transaction holds the
# database's write lock, so a reviewer's save waits behind one chunk, never the whole write.
WRITE_CHUNK = 200
# Planned cases are plain rows, inserted in bulk: more of them fit in as short a transaction.
PLAN_CHUNK = 1_000
START_CHUNK = 200

T = TypeVar("T")


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@dataclass(frozen=True)
class BatchRequest:
    """What an admin (or `manage.py generate`) asks for."""

    codes: list[str] = field(default_factory=list)
    top: int | None = None
    chapter: str = ""  # one chapter or several, comma-separated
    pairs_per_code: int = 1
    endpoint_name: str = ""
    model: str = ""
    gates: list[str] = field(default_factory=list)
    reviews_required: int = 1
    role: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    # The batch's cost cap; None: no cap.
    budget: Decimal | None = None
    blocks: list[str] = field(default_factory=list)
    minimum_per_chapter: int | None = None  # set: the top N is stratified across chapters
    # Set: a top-up to this many approved pairs per code (pairs_per_code is then unused).
    target_approved: int | None = None
    topup_per_code_cap: int | None = None
    topup_total_cap: int | None = None

    def selection(self) -> CodeSelection:
        return CodeSelection(
            codes=self.codes,
            top=self.top,
            chapters=split_list(self.chapter),
            blocks=self.blocks,
            minimum_per_chapter=self.minimum_per_chapter,
        )

    def topup(self) -> TopUp | None:
        if self.target_approved is None:
            return None
        return TopUp(target=self.target_approved, per_code_cap=self.topup_per_code_cap, total_cap=self.topup_total_cap)


def batch_codes_resolve(*, codes: list[str], top: int | None, chapter: str) -> list[IcdCode]:
    """The codes of a batch: an explicit list, or the top N by imported frequency
    (optionally within chapters), or every billable code of a chapter."""
    return codes_select(CodeSelection(codes=codes, top=top, chapters=split_list(chapter)))


def batch_codes_plan(*, request: BatchRequest) -> list[PlannedCode]:
    """The request's codes, each with the pairs it has and the new pairs it would get."""
    topup = request.topup()
    if topup is not None:
        limits = (topup.target, topup.per_code_cap or 1, topup.total_cap or 1)
        if min(limits) < 1:
            raise BatchPlanError("The top-up target and its caps must be at least 1.")
    return codes_plan(selection=request.selection(), pairs_per_code=request.pairs_per_code, topup=topup)


def _endpoint_resolve(name: str) -> LlmEndpoint:
    if name:
        endpoint = LlmEndpoint.objects.filter(name=name).first()
        if endpoint is None:
            known = ", ".join(LlmEndpoint.objects.values_list("name", flat=True)) or "none"
            raise BatchPlanError(f"Unknown LLM endpoint {name!r}. Configured endpoints: {known}.")
        return endpoint
    endpoint = selectors.default_endpoint()
    if endpoint is None:
        raise BatchPlanError("No default LLM endpoint: run `manage.py configure_llm` or choose an endpoint.")
    return endpoint


def _request_check(request: BatchRequest) -> None:
    if not 1 <= request.pairs_per_code <= MAX_PAIRS_PER_CODE:
        raise BatchPlanError(f"Pairs per code must be between 1 and {MAX_PAIRS_PER_CODE}.")
    if request.reviews_required < 1:
        raise BatchPlanError("Reviews per item must be at least 1.")
    unknown_gates = sorted(set(request.gates) - set(GATE_STAGES))
    if unknown_gates:
        raise BatchPlanError(f"Unknown review gate(s): {', '.join(unknown_gates)}; use {', '.join(GATE_STAGES)}.")
    if request.budget is not None and not (0 < request.budget < MAX_BUDGET):
        raise BatchPlanError(budget_problem(request.budget))
    if request.role:
        physician_role_active(name=request.role)
    try:
        text_within_limit(request.name, limit=BATCH_NAME_MAX_CHARS, what="The batch name")
    except TextTooLong as too_long:
        raise BatchPlanError(str(too_long)) from too_long


def budget_problem(budget: Decimal) -> str:
    return f"A budget cap must be above $0 and below ${MAX_BUDGET:,}, not ${budget}."


def _execution_check(request: BatchRequest, *, endpoint: LlmEndpoint) -> None:
    execution = request.config.get(EXECUTION_CONFIG_KEY) or ExecutionMode.REALTIME
    if execution not in ExecutionMode.values:
        raise BatchPlanError(f"Unknown execution mode {execution!r}; use {' or '.join(ExecutionMode.values)}.")
    if execution == ExecutionMode.PROVIDER_BATCH and not endpoint.supports_batch_api:
        raise BatchPlanError(
            f"Endpoint '{endpoint.name}' does not offer the Batch API: choose realtime execution, or mark the "
            "endpoint as supporting it (LLM endpoints in the admin) if its server does."
        )


def physician_role_active(*, name: str) -> PhysicianRole:
    role = PhysicianRole.objects.filter(name=name.strip(), is_active=True).first()
    if role is None:
        raise BatchPlanError(f"Unknown physician role {name!r}.")
    return role


@dataclass(frozen=True)
class ResolvedRequest:
    """A checked request: its codes, endpoint, model and the batch's config."""

    request: BatchRequest
    codes: list[IcdCode]
    endpoint: LlmEndpoint
    model: str
    config: dict[str, Any]

    @property
    def cases(self) -> int:
        by_code: dict[str, int] = self.config.get("pairs_by_code") or {}
        return sum(by_code.get(code.code, self.request.pairs_per_code) for code in self.codes)


def batch_request_resolve(*, request: BatchRequest) -> ResolvedRequest:
    """Check a request and find what it names; raises BatchPlanError, writes nothing."""
    _request_check(request)
    planned = [row for row in batch_codes_plan(request=request) if row.new_pairs]
    if not planned:
        raise BatchPlanError(
            f"Nothing to top up: every chosen code has {request.target_approved} approved or underway pair(s)."
        )
    if sum(row.new_pairs for row in planned) > MAX_CASES_PER_BATCH:
        raise BatchPlanError(f"That is more than {MAX_CASES_PER_BATCH} cases; split it into several batches.")
    codes = [row.code for row in planned]
    endpoint = _endpoint_resolve(request.endpoint_name)
    _execution_check(request, endpoint=endpoint)
    config = {
        **request.config,
        "codes": [code.code for code in codes],
        "pairs_per_code": request.pairs_per_code,
        "gates": sorted(set(request.gates)),
        "role": request.role,
    }
    if request.target_approved is not None:
        config["target_approved"] = request.target_approved
        config["pairs_by_code"] = {row.code.code: row.new_pairs for row in planned}
    return ResolvedRequest(
        request=request, codes=codes, endpoint=endpoint, model=request.model or endpoint.default_model, config=config
    )


def _estimate_of(resolved: ResolvedRequest) -> BatchEstimate:
    return batch_estimate(
        codes=resolved.codes,
        pairs_per_code=max(1, round(resolved.cases / len(resolved.codes))),
        endpoint=resolved.endpoint,
        model=resolved.model,
        config=resolved.config,
        cases=resolved.cases,
    )


def batch_request_estimate(*, request: BatchRequest) -> BatchEstimate:
    """What the requested batch would cost (LLM calls, tokens, cost per agent, with a range);
    nothing is created and no LLM endpoint is called."""
    return _estimate_of(batch_request_resolve(request=request))


def batch_create(*, request: BatchRequest, created_by: User | None = None) -> GenerationBatch:
    """Check the request, plan its cases and start it once committed.

    Raises BatchPlanError (unknown code, endpoint without its key, model not served, ...)
    before anything is written. The cases are then written in short transactions
    (batch_plan) while the batch is a draft that nothing starts; one more makes it queued.
    The batch keeps its cost estimate (the batch page shows spending against it) and its
    budget cap, if any.
    """
    resolved = batch_request_resolve(request=request)
    codes, endpoint, model = resolved.codes, resolved.endpoint, resolved.model
    try:
        endpoint_preflight(endpoint=endpoint, model=model)
    except LlmConfigError as error:
        raise BatchPlanError(str(error)) from error
    batch = GenerationBatch.objects.create(
        name=request.name or _default_name(codes, resolved.config),
        status=BatchStatus.DRAFT,
        config=resolved.config,
        endpoint=endpoint,
        model=model,
        reviews_required=request.reviews_required,
        created_by=created_by,
        budget=request.budget,
        cost_estimate=_estimate_of(resolved).as_json(),
    )
    try:
        batch_plan(batch=batch, codes=codes)
    except Exception as error:
        _partial_batch_abandon(batch, reason=f"Planning stopped ({type(error).__name__}: {error}).")
        raise
    with transaction.atomic():
        GenerationBatch.objects.filter(pk=batch.pk, status=BatchStatus.DRAFT).update(
            status=BatchStatus.QUEUED, updated_at=timezone.now()
        )
        transaction.on_commit(lambda: _enqueue_start(batch.pk))
    batch.refresh_from_db()
    return batch


def _default_name(codes: list[IcdCode], config: dict[str, Any]) -> str:
    shown = ", ".join(code.code for code in codes[:3]) + (f" and {len(codes) - 3} more" if len(codes) > 3 else "")
    if "target_approved" in config:
        return f"{shown}: top-up to {config['target_approved']} approved"
    return f"{shown} x {config['pairs_per_code']}"


def _enqueue_provider_batches_tick() -> None:
    """Cancel the provider batches now rather than on the next beat (which does it anyway)."""
    from generation.tasks import provider_batches_tick  # the task module imports this one

    try:
        provider_batches_tick.delay()
    except Exception:
        logger.warning("Could not enqueue the provider-batch pass; Celery beat runs it shortly.", exc_info=True)


def _enqueue_start(batch_id: int) -> None:
    from generation.tasks import start_batch  # the task module imports this one

    start_batch.delay(batch_id)


def batch_plan(*, batch: GenerationBatch, codes: list[IcdCode]) -> int:
    """Create the batch's cases (code x slot), PLAN_CHUNK rows per transaction; planning
    again adds only what is missing. A top-up batch names each code's pairs."""
    pairs = int(batch.config.get("pairs_per_code", 1))
    pairs_by_code: dict[str, int] = batch.config.get("pairs_by_code") or {}
    role_name = batch.config.get("role") or ""
    role = PhysicianRole.objects.filter(name=role_name).first() if role_name else None
    planned = (
        Case(batch=batch, code=code, slot=slot, role=role, reviews_required=batch.reviews_required)
        for code in codes
        for slot in range(1, pairs_by_code.get(code.code, pairs) + 1)
    )
    for chunk in _chunks(planned, PLAN_CHUNK):
        with transaction.atomic():
            Case.objects.bulk_create(chunk, ignore_conflicts=True)
    # Counted once planned (the inserts skip the cases that exist: their number is not known).
    batch_counters_recount(batch_id=batch.pk)
    batch.refresh_from_db(fields=["planned_count", "in_flight_count"])
    return batch.planned_count


def batch_start(*, batch_id: int) -> int:
    """Enqueue the first step of every planned case of a queued or running batch."""
    batch = GenerationBatch.objects.get(pk=batch_id)
    if batch.status not in BATCH_STARTABLE_STATUSES:
        return 0
    GenerationBatch.objects.filter(pk=batch_id, started_at__isnull=True).update(started_at=timezone.now())
    # Conditional, so a pause or cancel that came first is not undone.
    GenerationBatch.objects.filter(pk=batch_id, status__in=BATCH_STARTABLE_STATUSES).update(status=BatchStatus.RUNNING)
    snapshot = selectors.latest_survey_snapshot()
    started = 0
    # START_CHUNK cases per transaction, each written in a few statements (cases_start); each
    # chunk's messages are sent once it commits, their time noted in one write. A chunk lost to a
    # crash leaves its cases PLANNED, and a message lost after the commit its step PENDING, for
    # the recovery pass. The ids are read in full first: no cursor stays open across the writes.
    planned = batch.cases.filter(status=CaseStatus.PLANNED).order_by("id").values_list("pk", flat=True)
    for case_ids in _chunks(list(planned), START_CHUNK):
        with transaction.atomic():
            step_ids = cases_start(batch_id=batch_id, case_ids=case_ids, snapshot=snapshot)
            transaction.on_commit(partial(steps_enqueue, step_ids=step_ids))
        started += len(step_ids)
    batch_status_settle(batch_id=batch_id)
    return started


# --- Operations on a running batch: pause, resume, cancel, retry --------------------------


class BatchOperationRefused(DomainError):
    """The batch's status does not allow the operation; nothing changed."""


def _fresh_status_label(batch: GenerationBatch) -> str:
    """The batch's status as another request may just have set it."""
    batch.refresh_from_db(fields=["status", "finished_at", "updated_at"])
    return batch.get_status_display().lower()


def batch_pause(*, batch: GenerationBatch) -> bool:
    """Start no new LLM call for the batch until it is resumed; calls in flight finish and
    their output is kept. Returns False when the batch was already paused."""
    paused = GenerationBatch.objects.filter(pk=batch.pk, status__in=BATCH_STARTABLE_STATUSES).update(
        status=BatchStatus.PAUSED, pause_reason=PauseReason.ADMIN, updated_at=timezone.now()
    )
    label = _fresh_status_label(batch)
    if not paused and batch.status != BatchStatus.PAUSED:
        raise BatchOperationRefused(f"The batch is {label}: only a queued or running batch can be paused.")
    return bool(paused)


def batch_resume(*, batch: GenerationBatch) -> int:
    """Let a paused batch call the model again: its waiting steps are enqueued again and
    its cases not started yet are started. Returns how many steps were enqueued (0 when
    the batch was not paused: a second resume does nothing)."""
    with transaction.atomic():
        resumed = GenerationBatch.objects.filter(pk=batch.pk, status=BatchStatus.PAUSED).update(
            status=BatchStatus.RUNNING, pause_reason=PauseReason.NONE, updated_at=timezone.now()
        )
        if not resumed:
            batch.refresh_from_db(fields=["status"])
            if batch.status == BatchStatus.CANCELLED:
                raise BatchOperationRefused("The batch was cancelled; plan a new one instead.")
            return 0
        # Running steps too: their worker may have died during the pause; the claim drops
        # the message while the first runner is alive.
        waiting = PipelineStep.objects.filter(
            case__batch_id=batch.pk, status__in=[StepStatus.PENDING, StepStatus.RUNNING]
        ).values_list("pk", flat=True)
        step_ids = list(waiting)
        for step_id in step_ids:
            transaction.on_commit(partial(step_enqueue, step_id=step_id))
        if batch.cases.filter(status=CaseStatus.PLANNED).exists():
            transaction.on_commit(lambda: _enqueue_start(batch.pk))
        batch_status_settle(batch_id=batch.pk)
    batch.refresh_from_db()
    return len(step_ids)


@dataclass(frozen=True)
class BudgetChange:
    """What setting a batch's cap did: `resumed` is how many waiting steps a resume sent again
    (None: the batch was not paused at its cap, or the new cap still leaves no room)."""

    budget: Decimal | None
    resumed: int | None
    still_short: bool = False

    @property
    def summary(self) -> str:
        cap = f"${self.budget}" if self.budget is not None else "none"
        if self.still_short:
            return f"Cap set to {cap}, but the batch stays paused: its next step would still pass it. Raise it further."
        if self.resumed is not None:
            return f"Cap set to {cap}; the batch resumed: {self.resumed} waiting step(s) sent to the workers again."
        return f"Budget cap set to {cap}."


def batch_budget_set(*, batch: GenerationBatch, budget: Decimal | None) -> BudgetChange:
    """Set a batch's cost cap (None removes it). A batch paused at its cap resumes once the new
    cap leaves room for its next step. A cap at or below what the batch has spent is refused."""
    if budget is not None and not 0 < budget < MAX_BUDGET:
        raise BatchOperationRefused(budget_problem(budget))
    batch.refresh_from_db(fields=["status", "pause_reason", "budget", "cost_estimate"])
    if batch.status == BatchStatus.CANCELLED:
        raise BatchOperationRefused("The batch was cancelled; plan a new one instead.")
    spent = selectors.batch_spent(batch_id=batch.pk)
    if budget is not None and budget <= spent:
        raise BatchOperationRefused(f"The batch has already spent ${spent:.4f}: a cap must be above that.")
    GenerationBatch.objects.filter(pk=batch.pk).update(budget=budget, updated_at=timezone.now())
    batch.budget = budget
    if batch.status != BatchStatus.PAUSED or batch.pause_reason != PauseReason.BUDGET:
        return BudgetChange(budget=budget, resumed=None)
    if not budget_fits_next_step(batch=batch):
        return BudgetChange(budget=budget, resumed=None, still_short=True)
    return BudgetChange(budget=budget, resumed=batch_resume(batch=batch))


def batch_cancel(*, batch: GenerationBatch) -> int:
    """Stop a batch for good: cases not yet finished are cancelled and waiting steps are
    failed, so no new LLM call starts (a step between two attempts stops before the next
    one). Everything produced stays. Returns how many cases were cancelled.

    Written in short transactions, so cancelling a large batch never holds SQLite's write
    lock for long: the batch's status first (from then on no new call starts), then its
    cases and waiting steps, WRITE_CHUNK at a time. A cancel interrupted part way is
    finished by the next one."""
    now = timezone.now()
    GenerationBatch.objects.exclude(status=BatchStatus.CANCELLED).filter(pk=batch.pk).update(
        status=BatchStatus.CANCELLED, finished_at=now, updated_at=now
    )
    cancelled = 0
    open_cases = batch.cases.filter(status__in=_CANCELLED_WITH_THE_BATCH).order_by("pk")
    # The ids are read in full first: no cursor stays open across the writes.
    for case_ids in _chunks(list(open_cases.values_list("pk", flat=True)), WRITE_CHUNK):
        with transaction.atomic():
            cancelled += cases_transition(
                batch_id=batch.pk,
                case_ids=case_ids,
                current=_CANCELLED_WITH_THE_BATCH,
                to=CaseStatus.CANCELLED,
                error="The batch was cancelled.",
            )
    # Steps held by a pause have no message left to end them; steps waiting for a provider
    # batch have none either.
    waiting_statuses = [StepStatus.PENDING, StepStatus.BATCHED]
    waiting = PipelineStep.objects.filter(case__batch_id=batch.pk, status__in=waiting_statuses).order_by("pk")
    for step_ids in _chunks(list(waiting.values_list("pk", flat=True)), WRITE_CHUNK):
        PipelineStep.objects.filter(pk__in=step_ids, status__in=waiting_statuses).update(
            status=StepStatus.FAILED, error="The batch was cancelled.", finished_at=now, updated_at=now
        )
    if provider_batches_cancel(generation_batch_id=batch.pk):
        transaction.on_commit(_enqueue_provider_batches_tick)
    batch.refresh_from_db()
    return cancelled


# A cancel stops every case still on its way; finished pairs waiting for review stay reviewable.
_CANCELLED_WITH_THE_BATCH = tuple(
    status
    for status in CaseStatus.values
    if CaseStatus.CANCELLED in CASE_TRANSITIONS[status]
    and status not in (CaseStatus.PAIR_REVIEW, CaseStatus.ADJUDICATION)
)


def batch_retry_failed(*, batch: GenerationBatch, seen_up_to: int | None = None) -> int:
    """Run the failed step of every failed case of the batch again; returns how many.

    Idempotent: a case is retried only while it is failed and, given `seen_up_to` (the
    newest failed step the admin saw: selectors.newest_failed_step_id), only for a failure
    the admin saw. A second submit of the same form finds the cases running again, or
    failed anew, and does nothing.
    """
    batch.refresh_from_db(fields=["status"])  # another request may just have paused or cancelled it
    if batch.status == BatchStatus.CANCELLED:
        raise BatchOperationRefused("The batch was cancelled; plan a new one instead.")
    if batch.status == BatchStatus.PAUSED:
        raise BatchOperationRefused("The batch is paused: resume it first.")
    retried = 0
    for case_id in batch.cases.filter(status=CaseStatus.FAILED).order_by("id").values_list("pk", flat=True):
        with transaction.atomic():
            case = Case.objects.select_for_update().get(pk=case_id)
            if case.status != CaseStatus.FAILED:
                continue  # another submit sent it back first
            if seen_up_to is not None and case.steps.filter(status=StepStatus.FAILED, pk__gt=seen_up_to).exists():
                continue  # sent back since the page was shown, and failed again
            case_retry(case=case)
            retried += 1
    return retried


# --- Imported batches -----------------------------------------------------------------


@dataclass(frozen=True)
class ImportedText:
    """A note or dialogue as another dataset wrote it: the original text, kept verbatim,
    the content parsed from it, and flags for what parsing could not place."""

    text: str
    content: dict[str, Any]
    flags: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ImportedPair:
    code: IcdCode | None  # None: imported with the code to be assigned
    note: ImportedText
    dialogue: ImportedText
    role: PhysicianRole | None = None
    scenario: dict[str, Any] | None = None


class ImportInterrupted(DomainError):
    """Writing an import failed part way; what it had written is cancelled (`batch`)."""

    def __init__(self, message: str, *, batch: GenerationBatch) -> None:
        super().__init__(message)
        self.batch = batch


def imported_batch_create(
    *, name: str, pairs: Iterable[ImportedPair], config: dict[str, Any], created_by: User | None = None
) -> GenerationBatch:
    """A batch of pairs written elsewhere, every case waiting for the final pair review.

    All or nothing, in short transactions: each chunk of WRITE_CHUNK pairs is checked,
    then written in one transaction. Until the last chunk is in, the batch is a draft and its
    cases are planned, so none is in a review queue or an export; one UPDATE then hands them
    all to review. When a chunk fails, the partial batch is cancelled (its cases keep their
    rows, marked cancelled with the reason) and ImportInterrupted says so.
    """
    batch = GenerationBatch.objects.create(
        name=name, kind=BatchKind.IMPORTED, status=BatchStatus.DRAFT, config=config, created_by=created_by
    )
    written = 0
    try:
        slots: Counter[int] = Counter()
        for chunk in _chunks(pairs, WRITE_CHUNK):
            new_cases = [_imported_case(batch, pair, slots) for pair in chunk]
            with transaction.atomic():
                cases_with_versions_create(new_cases=new_cases, source=VersionSource.IMPORTED)
            written += len(new_cases)
        with transaction.atomic():
            cases_transition(batch_id=batch.pk, current={CaseStatus.PLANNED}, to=CaseStatus.PAIR_REVIEW)
            # Nothing is left to generate, so the batch is complete once its cases are in.
            now = timezone.now()
            GenerationBatch.objects.filter(pk=batch.pk).update(
                status=BatchStatus.COMPLETED, finished_at=now, updated_at=now
            )
    except Exception as error:
        reason = f"The import stopped after {written:,} pair(s) ({type(error).__name__}: {error})"
        _partial_batch_abandon(batch, reason=f"{reason}; this partial import was cancelled.")
        raise ImportInterrupted(
            f"{reason}. Its batch {batch.pk} was cancelled: none of its cases is in a queue or an export. "
            "Nothing else changed; import the file again.",
            batch=batch,
        ) from error
    batch.refresh_from_db()
    return batch


def _imported_case(batch: GenerationBatch, pair: ImportedPair, slots: Counter[int]) -> NewCase:
    """One imported pair as the next case of its code in the batch, with IMPORTED versions
    that keep the original text (checked here, before the chunk's transaction)."""
    code_key = pair.code.pk if pair.code else 0  # the cases without a code are numbered together
    slots[code_key] += 1
    case = Case(
        batch=batch, code=pair.code, slot=slots[code_key], role=pair.role, reviews_required=batch.reviews_required
    )
    drafts = []
    if pair.scenario:
        scenario_text = rendering.scenario_text(pair.scenario)
        drafts.append(
            artefact_version_draft(case=case, kind=ArtefactKind.SCENARIO, content=pair.scenario, text=scenario_text)
        )
    for kind, imported in ((ArtefactKind.NOTE, pair.note), (ArtefactKind.DIALOGUE, pair.dialogue)):
        checks = version_check_flags(
            kind=kind, content=imported.content, text=imported.text, note_content=pair.note.content
        )
        drafts.append(
            artefact_version_draft(
                case=case,
                kind=kind,
                content=imported.content,
                text=imported.text,
                check_flags=imported.flags + checks,
            )
        )
    return NewCase(case=case, drafts=drafts)


def _partial_batch_abandon(batch: GenerationBatch, *, reason: str) -> None:
    """Cancel what a failed import or plan wrote. Its cases were all still planned, in a draft
    batch (in no queue, never started), and versions are history that is never deleted, so the
    rows stay, marked cancelled."""
    with transaction.atomic():
        batch_counters_recount(batch_id=batch.pk)  # a plan that stopped part way has not counted its cases
        cases_transition(batch_id=batch.pk, current={CaseStatus.PLANNED}, to=CaseStatus.CANCELLED, error=reason)
        now = timezone.now()
        GenerationBatch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.CANCELLED, finished_at=now, updated_at=now
        )
