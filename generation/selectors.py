"""Read-only queries of the generation domain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from generation.models import (
    FAILED_STATUSES,
    IN_FLIGHT_STATUSES,
    AgentCall,
    ArtefactKind,
    ArtefactVersion,
    BatchStatus,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    SurveySnapshot,
    VersionSource,
)


@dataclass(frozen=True)
class CatalogueSummary:
    codes: int
    billable_codes: int
    codes_with_frequency: int


def catalogue_summary() -> CatalogueSummary:
    counts = IcdCode.objects.aggregate(
        codes=Count("id"),
        billable=Count("id", filter=Q(is_billable=True)),
        with_frequency=Count("id", filter=Q(frequency__isnull=False)),
    )
    return CatalogueSummary(
        codes=counts["codes"], billable_codes=counts["billable"], codes_with_frequency=counts["with_frequency"]
    )


def case_counts_by_status() -> list[tuple[str, str, int]]:
    """(status, label, count) for every status that has cases, in state-machine order."""
    counts = case_status_counts(Case.objects.all())
    return [(status.value, status.label, counts[status.value]) for status in CaseStatus if status.value in counts]


def recent_batches(*, limit: int = 10) -> QuerySet[GenerationBatch]:
    return GenerationBatch.objects.select_related("endpoint", "created_by")[:limit]


def current_versions_of_cases(
    *, case_ids: Iterable[int], kind: str | None = None
) -> dict[tuple[int, str], ArtefactVersion]:
    """{(case id, kind): its current version} for many cases in one query. A conflicting
    draft is history, never current (as in services.cases.latest_version)."""
    versions = ArtefactVersion.objects.filter(case_id__in=list(case_ids)).exclude(source=VersionSource.HUMAN_DRAFT)
    if kind is not None:
        versions = versions.filter(kind=kind)
    current: dict[tuple[int, str], ArtefactVersion] = {}
    for version in versions.order_by("case_id", "kind", "-number"):
        current.setdefault((version.case_id, version.kind), version)
    return current


def latest_survey_snapshot() -> SurveySnapshot | None:
    """The published survey weights that new generations use."""
    return SurveySnapshot.objects.select_related("published_by").order_by("-version").first()


def default_endpoint() -> LlmEndpoint | None:
    return LlmEndpoint.objects.filter(is_default=True, is_active=True).first()


# --- Batch progress -------------------------------------------------------------------


def case_status_counts(cases: QuerySet[Case]) -> dict[str, int]:
    """{status: number of cases} in one query."""
    return dict(cases.values_list("status").annotate(n=Count("id")).values_list("status", "n"))


def produced_case_count(cases: QuerySet[Case]) -> int:
    """Cases whose pipeline has produced a polished dialogue at least once."""
    return (
        cases.filter(versions__kind=ArtefactKind.DIALOGUE, versions__source=VersionSource.LLM_POLISHED)
        .distinct()
        .count()
    )


@dataclass(frozen=True)
class BatchProgress:
    batch_id: int
    name: str
    status: str
    status_label: str
    planned: int
    in_flight: int
    done: int
    failed: int
    calls: int
    failed_calls: int
    input_tokens: int
    output_tokens: int
    cost: Decimal
    wall_seconds: float
    endpoint_name: str
    model: str
    is_local_demo: bool
    counts_by_status: list[tuple[str, int]] = field(default_factory=list)

    @property
    def settled(self) -> int:
        return self.planned - self.in_flight

    @property
    def fraction_done(self) -> float:
        return self.settled / self.planned if self.planned else 1.0

    @property
    def percent_done(self) -> int:
        return int(round(100 * self.fraction_done))

    @property
    def finished(self) -> bool:
        return self.status in (BatchStatus.COMPLETED, BatchStatus.CANCELLED) or self.in_flight == 0

    @property
    def wall_time_text(self) -> str:
        minutes, seconds = divmod(int(self.wall_seconds), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def batch_progress(*, batch_id: int) -> BatchProgress:
    """Live counts of a batch: cases by status, LLM calls, tokens and cost."""
    batch = GenerationBatch.objects.select_related("endpoint").get(pk=batch_id)
    by_status = case_status_counts(batch.cases.all())
    produced = produced_case_count(batch.cases.all())
    calls = AgentCall.objects.filter(case__batch=batch).aggregate(
        calls=Count("id"),
        failed=Count("id", filter=~Q(error_kind="")),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost"),
    )
    end = batch.finished_at or timezone.now()
    labels = dict(CaseStatus.choices)
    return BatchProgress(
        batch_id=batch.pk,
        name=batch.name,
        status=batch.status,
        status_label=batch.get_status_display(),
        planned=sum(by_status.values()),
        in_flight=sum(by_status.get(status, 0) for status in IN_FLIGHT_STATUSES),
        done=produced,
        failed=sum(by_status.get(status, 0) for status in FAILED_STATUSES),
        calls=calls["calls"] or 0,
        failed_calls=calls["failed"] or 0,
        input_tokens=calls["input_tokens"] or 0,
        output_tokens=calls["output_tokens"] or 0,
        cost=calls["cost"] or Decimal(0),
        wall_seconds=(end - batch.started_at).total_seconds() if batch.started_at else 0.0,
        endpoint_name=batch.endpoint.name if batch.endpoint else "",
        model=batch.model,
        is_local_demo=bool(batch.endpoint and batch.endpoint.is_local_demo),
        counts_by_status=[(labels[status], by_status[status]) for status in CaseStatus.values if status in by_status],
    )


def batch_for_detail(*, batch_id: int) -> GenerationBatch:
    return GenerationBatch.objects.select_related("endpoint", "created_by").get(pk=batch_id)


def active_endpoints() -> QuerySet[LlmEndpoint]:
    return LlmEndpoint.objects.filter(is_active=True).order_by("-is_default", "name")
