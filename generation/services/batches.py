"""Planning and launching generation batches.

Everything a batch needs is checked before its first row is written: the codes exist,
the endpoint's key is set and it serves the model. Planning is idempotent (a case is
(batch, code, slot)), and starting a batch enqueues the first step of every planned case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from generation.llm import LlmConfigError, endpoint_preflight
from generation.models import (
    TERMINAL_STATUSES,
    BatchStatus,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    PhysicianRole,
)
from generation.services.cases import case_transition
from generation.services.catalogue import code_compact, codes_by_compact, looks_like_icd9
from generation.services.pipeline import GATE_STAGES, batch_progress_refresh, case_retry, case_start

MAX_PAIRS_PER_CODE = 100
MAX_CASES_PER_BATCH = 50_000


class BatchPlanError(ValueError):
    """The batch request cannot be planned; nothing was created."""


@dataclass(frozen=True)
class BatchRequest:
    """What an admin (or `manage.py generate`) asks for."""

    codes: list[str] = field(default_factory=list)
    top: int | None = None
    chapter: str = ""
    pairs_per_code: int = 1
    endpoint_name: str = ""
    model: str = ""
    gates: list[str] = field(default_factory=list)
    reviews_required: int = 1
    role: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)


def _codes_listed(raw_codes: list[str]) -> list[IcdCode]:
    wanted = [code_compact(raw) for raw in raw_codes if raw.strip()]
    known = codes_by_compact(wanted)
    unknown = [raw.strip() for raw in raw_codes if raw.strip() and code_compact(raw) not in known]
    if unknown:
        hint = " (these look like ICD-9 codes)" if all(looks_like_icd9(raw) for raw in unknown) else ""
        loaded = "" if IcdCode.objects.exists() else " The catalogue is empty: run `manage.py load_icd10` first."
        raise BatchPlanError(f"Unknown ICD-10-CM code(s): {', '.join(unknown)}{hint}.{loaded}")
    unique = list(dict.fromkeys(wanted))
    return [known[compact] for compact in unique]


def batch_codes_resolve(*, codes: list[str], top: int | None, chapter: str) -> list[IcdCode]:
    """The codes of a batch: an explicit list, or the top N by imported frequency
    (optionally within one chapter), or every billable code of a chapter."""
    if codes:
        return _codes_listed(codes)
    queryset = IcdCode.objects.filter(is_billable=True)
    if chapter:
        queryset = queryset.filter(chapter=chapter.strip())
        if not queryset.exists():
            raise BatchPlanError(f"No billable ICD-10-CM codes in chapter {chapter!r} (chapters are numbered 1-22).")
    if top is not None:
        if top < 1:
            raise BatchPlanError("--top must be at least 1.")
        ranked = queryset.filter(frequency__isnull=False).order_by("-frequency", "code")[:top]
        found = list(ranked)
        if not found:
            raise BatchPlanError(
                "No code frequencies have been imported, so there is no top-N: import them "
                "(`manage.py import_code_frequencies FILE`) or list the codes."
            )
        return found
    if chapter:
        return list(queryset.order_by("code"))
    raise BatchPlanError("Choose the codes: a list of codes, a top-N by frequency, or a chapter.")


def _endpoint_resolve(name: str) -> LlmEndpoint:
    if name:
        endpoint = LlmEndpoint.objects.filter(name=name).first()
        if endpoint is None:
            known = ", ".join(LlmEndpoint.objects.values_list("name", flat=True)) or "none"
            raise BatchPlanError(f"Unknown LLM endpoint {name!r}. Configured endpoints: {known}.")
        return endpoint
    endpoint = LlmEndpoint.objects.filter(is_default=True, is_active=True).first()
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
    if request.role and not PhysicianRole.objects.filter(name=request.role, is_active=True).exists():
        raise BatchPlanError(f"Unknown physician role {request.role!r}.")


def batch_create(*, request: BatchRequest, created_by: User | None = None) -> GenerationBatch:
    """Check the request, plan its cases and start it once committed.

    Raises BatchPlanError (unknown code, endpoint without its key, model not served, ...)
    before anything is written.
    """
    _request_check(request)
    codes = batch_codes_resolve(codes=request.codes, top=request.top, chapter=request.chapter)
    if len(codes) * request.pairs_per_code > MAX_CASES_PER_BATCH:
        raise BatchPlanError(f"That is more than {MAX_CASES_PER_BATCH} cases; split it into several batches.")
    endpoint = _endpoint_resolve(request.endpoint_name)
    model = request.model or endpoint.default_model
    try:
        endpoint_preflight(endpoint=endpoint, model=model)
    except LlmConfigError as error:
        raise BatchPlanError(str(error)) from error
    config = {
        **request.config,
        "codes": [code.code for code in codes],
        "pairs_per_code": request.pairs_per_code,
        "gates": sorted(set(request.gates)),
        "role": request.role,
    }
    with transaction.atomic():
        batch = GenerationBatch.objects.create(
            name=request.name or _default_name(codes, request.pairs_per_code),
            status=BatchStatus.QUEUED,
            config=config,
            endpoint=endpoint,
            model=model,
            reviews_required=request.reviews_required,
            created_by=created_by,
        )
        batch_plan(batch=batch, codes=codes)
        transaction.on_commit(lambda: _enqueue_start(batch.pk))
    return batch


def _default_name(codes: list[IcdCode], pairs: int) -> str:
    shown = ", ".join(code.code for code in codes[:3]) + (f" and {len(codes) - 3} more" if len(codes) > 3 else "")
    return f"{shown} x {pairs}"


def _enqueue_start(batch_id: int) -> None:
    from generation.tasks import start_batch  # the task module imports this one

    start_batch.delay(batch_id)


def batch_plan(*, batch: GenerationBatch, codes: list[IcdCode]) -> int:
    """Create the batch's cases (code x slot); planning again adds only what is missing."""
    pairs = int(batch.config.get("pairs_per_code", 1))
    role_name = batch.config.get("role") or ""
    role = PhysicianRole.objects.filter(name=role_name).first() if role_name else None
    Case.objects.bulk_create(
        [
            Case(batch=batch, code=code, slot=slot, role=role, reviews_required=batch.reviews_required)
            for code in codes
            for slot in range(1, pairs + 1)
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    planned = batch.cases.count()
    GenerationBatch.objects.filter(pk=batch.pk).update(planned_count=planned)
    batch.planned_count = planned
    return planned


def batch_start(*, batch_id: int) -> int:
    """Enqueue the first step of every planned case of a queued or running batch."""
    batch = GenerationBatch.objects.get(pk=batch_id)
    if batch.status not in (BatchStatus.QUEUED, BatchStatus.RUNNING):
        return 0
    GenerationBatch.objects.filter(pk=batch_id, started_at__isnull=True).update(started_at=timezone.now())
    GenerationBatch.objects.filter(pk=batch_id).update(status=BatchStatus.RUNNING)
    started = 0
    for case in batch.cases.filter(status=CaseStatus.PLANNED).order_by("id"):
        case_start(case=case)
        started += 1
    batch_progress_refresh(batch_id=batch_id)
    return started


def batch_cancel(*, batch: GenerationBatch) -> int:
    """Stop a batch: cases not yet finished are cancelled; their queued steps see it and stop."""
    cancelled = 0
    with transaction.atomic():
        GenerationBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.CANCELLED, finished_at=timezone.now())
        open_cases = batch.cases.exclude(
            status__in=[*TERMINAL_STATUSES, CaseStatus.PAIR_REVIEW, CaseStatus.ADJUDICATION]
        )
        for case in open_cases.select_for_update():
            if case.can_transition_to(CaseStatus.CANCELLED):
                case_transition(case=case, to=CaseStatus.CANCELLED, error="The batch was cancelled.")
                cancelled += 1
    batch.refresh_from_db()
    return cancelled


def batch_retry_failed(*, batch: GenerationBatch) -> int:
    """Run the failed step of every failed case of the batch again."""
    if batch.status == BatchStatus.CANCELLED:
        raise BatchPlanError("The batch was cancelled; plan a new one instead.")
    retried = 0
    for case in batch.cases.filter(status=CaseStatus.FAILED).order_by("id"):
        case_retry(case=case)
        retried += 1
    return retried
