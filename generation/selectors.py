"""Read-only queries of the generation domain."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from generation.models import Case, CaseStatus, GenerationBatch, IcdCode, LlmEndpoint


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
    counts = dict(Case.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return [(status.value, status.label, counts[status.value]) for status in CaseStatus if status.value in counts]


def recent_batches(*, limit: int = 10) -> QuerySet[GenerationBatch]:
    return GenerationBatch.objects.select_related("endpoint", "created_by")[:limit]


def default_endpoint() -> LlmEndpoint | None:
    return LlmEndpoint.objects.filter(is_default=True, is_active=True).first()
