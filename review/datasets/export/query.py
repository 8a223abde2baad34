"""Which pairs an export holds, read a page of cases at a time: approved cases only,
each with the exact note and dialogue versions that the approving decision named and
every counted approver approved."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Q,
    QuerySet,
)
from django.db.models.expressions import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.models import (
    AgentCall,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    IcdCode,
    InContextExample,
    ReviewStage,
    code_compact,
)
from generation.selectors import current_versions_of_cases
from review.datasets.splits import CodeCount
from review.models import ReviewAction, ReviewDecision
from review.selectors import ACCEPTING_ACTIONS

CHUNK_SIZE = 500


@dataclass(frozen=True)
class ExportFilters:
    batch_ids: tuple[int, ...] = ()
    codes: tuple[str, ...] = ()
    chapters: tuple[str, ...] = ()
    approved_from: date | None = None
    approved_to: date | None = None
    min_agreement: float | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "batch_ids": list(self.batch_ids),
            "codes": list(self.codes),
            "chapters": list(self.chapters),
            "approved_from": self.approved_from.isoformat() if self.approved_from else None,
            "approved_to": self.approved_to.isoformat() if self.approved_to else None,
            "min_agreement": self.min_agreement,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ExportFilters:
        def day(value: str | None) -> date | None:
            return date.fromisoformat(value) if value else None

        return cls(
            batch_ids=tuple(params.get("batch_ids") or ()),
            codes=tuple(params.get("codes") or ()),
            chapters=tuple(params.get("chapters") or ()),
            approved_from=day(params.get("approved_from")),
            approved_to=day(params.get("approved_to")),
            min_agreement=params.get("min_agreement"),
        )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def approved_pairs(*, filters: ExportFilters) -> QuerySet[Case]:
    """Approved cases with the versions their approving decision named, filtered.

    The approving decision is the latest pair-stage approve/edit: with several reviewers
    or an adjudication, that is the one that moved the case to APPROVED. A verdict counts
    for the versions it named (review.selectors: an edit starts a new round), so a pair
    is exported only when an adjudicator approved it or as many reviewers as it required
    approved exactly those versions: an edit that earlier approvers never saw is not
    exported. Agreement is the share of the reviewers who decided on those versions
    (skips aside) who approved them.
    """
    pair_decisions = ReviewDecision.objects.filter(case=OuterRef("pk"), stage=ReviewStage.PAIR)
    approving = pair_decisions.filter(action__in=ACCEPTING_ACTIONS).order_by("-created_at", "-id")
    on_approved_versions = pair_decisions.exclude(action=ReviewAction.SKIP).filter(
        note_version_id=OuterRef("approved_note_id"), dialogue_version_id=OuterRef("approved_dialogue_id")
    )

    def reviewers(decisions: QuerySet[ReviewDecision]) -> Coalesce:
        counted = decisions.order_by().values("case").annotate(n=Count("reviewer", distinct=True)).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    cases = (
        Case.objects.filter(status=CaseStatus.APPROVED)
        .annotate(
            approving_decision_id=Subquery(approving.values("id")[:1]),
            approved_by_adjudication=Subquery(approving.values("is_adjudication")[:1], output_field=BooleanField()),
            approved_at=Subquery(approving.values("created_at")[:1], output_field=DateTimeField()),
            approved_note_id=Subquery(approving.values("note_version_id")[:1]),
            approved_dialogue_id=Subquery(approving.values("dialogue_version_id")[:1]),
        )
        .annotate(
            reviewers_total=reviewers(on_approved_versions),
            reviewers_approving=reviewers(on_approved_versions.filter(action__in=ACCEPTING_ACTIONS)),
        )
        .filter(approved_note_id__isnull=False, approved_dialogue_id__isnull=False)
        .filter(Q(approved_by_adjudication=True) | Q(reviewers_approving__gte=F("reviews_required")))
    )
    if filters.batch_ids:
        cases = cases.filter(batch_id__in=filters.batch_ids)
    if filters.codes:
        cases = cases.filter(code__code_compact__in=[code_compact(code) for code in filters.codes])
    if filters.chapters:
        cases = cases.filter(code__chapter__in=[chapter.strip() for chapter in filters.chapters])
    if filters.approved_from:
        cases = cases.filter(approved_at__gte=_day_start(filters.approved_from))
    if filters.approved_to:
        cases = cases.filter(approved_at__lt=_day_start(filters.approved_to + timedelta(days=1)))
    if filters.min_agreement is not None:
        needed = ExpressionWrapper(F("reviewers_total") * filters.min_agreement, output_field=FloatField())
        cases = cases.filter(reviewers_approving__gte=needed)
    return cases.order_by("code__code", "id")


@dataclass(frozen=True)
class CodeGroup(CodeCount):
    code_id: int


def code_groups(*, cases: QuerySet[Case]) -> list[CodeGroup]:
    """The exported codes in export order with their pair counts: one row per code, however many pairs."""
    rows = (
        cases.order_by()
        .values_list("code__code", "code_id", "code__block", "code__chapter")
        .annotate(n=Count("id", distinct=True))
    )
    return sorted(
        (
            CodeGroup(code=code, code_id=code_id, block=block, chapter=chapter, count=n)
            for code, code_id, block, chapter, n in rows
        ),
        key=lambda group: group.code,
    )


def example_links(*, cases: QuerySet[Case]) -> list[tuple[int, int]]:
    """(generated case id, example case id) for each exported case that was shown another
    exported case as an in-context example (generation.models.InContextExample)."""
    exported = cases.order_by().values("pk")
    links = (
        InContextExample.objects.filter(case_id__in=exported, example_case_id__in=exported)
        .values_list("case_id", "example_case_id")
        .order_by("case_id", "example_case_id")
        .distinct()
    )
    return list(links)


def exported_case_codes(*, cases: QuerySet[Case], case_ids: Iterable[int]) -> dict[int, str]:
    """{case id: code} of the given cases that the export holds (the others are left out)."""
    wanted = sorted(set(case_ids))
    codes: dict[int, str] = {}
    for start in range(0, len(wanted), CHUNK_SIZE):
        page = cases.order_by().filter(pk__in=wanted[start : start + CHUNK_SIZE]).values_list("pk", "code__code")
        codes.update(page)
    return codes


def annotation(case: Case, name: str) -> Any:
    """A value that approved_pairs() annotated on the case (typed as Any: stubs cannot see it)."""
    return getattr(case, name)


@dataclass
class PairRecord:
    """Everything the profiles and the card read about one exported pair."""

    case: Case
    note: ArtefactVersion
    dialogue: ArtefactVersion
    scenario: ArtefactVersion | None
    decisions: list[ReviewDecision] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    # {agent: [approved case ids shown as in-context examples]}, in the order shown.
    examples: dict[str, list[int]] = field(default_factory=dict)

    @property
    def code(self) -> IcdCode:
        """Every exported case has its code: only a case with one is approved."""
        return self.case.assigned_code()

    @property
    def agreement(self) -> float:
        total = int(annotation(self.case, "reviewers_total"))
        return round(int(annotation(self.case, "reviewers_approving")) / total, 4) if total else 1.0

    @property
    def approving_action(self) -> str:
        decision_id = annotation(self.case, "approving_decision_id")
        return next((decision.action for decision in self.decisions if decision.pk == decision_id), "")


def _case_pages(cases: QuerySet[Case], groups: list[CodeGroup], size: int) -> Iterator[list[Case]]:
    """Pages of about `size` cases in (code, id) order, each one indexed query.

    Small codes are fetched together by code id; a code with more pairs than a page is
    walked by id (keyset), so no page query sorts or filters the whole table.
    """
    related = cases.select_related("code", "batch", "role", "survey_snapshot").order_by("code__code", "id")
    pending: list[int] = []
    pending_count = 0
    for group in groups:
        if pending and pending_count + group.count > size:
            yield list(related.filter(code_id__in=pending))
            pending, pending_count = [], 0
        if group.count <= size:
            pending.append(group.code_id)
            pending_count += group.count
            continue
        last_id = 0
        while chunk := list(related.filter(code_id=group.code_id, id__gt=last_id)[:size]):
            yield chunk
            last_id = chunk[-1].pk
    if pending:
        yield list(related.filter(code_id__in=pending))


def _models_by_case(case_ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """The model, prompt version and endpoint of each agent's last successful call, per case."""
    models: dict[int, dict[str, dict[str, Any]]] = {}
    calls = (
        AgentCall.objects.filter(case_id__in=case_ids, error_kind="")
        .exclude(agent="")
        .order_by("case_id", "created_at", "id")
        .values_list("case_id", "agent", "model", "prompt_version", "endpoint_name", "endpoint__is_local_demo")
    )
    for case_id, agent, model, prompt_version, endpoint, local_demo in calls:
        models.setdefault(case_id, {})[agent] = {
            "model": model,
            "prompt_version": prompt_version,
            "endpoint": endpoint,
            "local_demo": bool(local_demo),
        }
    return models


def _examples_by_case(case_ids: list[int]) -> dict[int, dict[str, list[int]]]:
    """{case id: {agent: example case ids}} over the case's successful calls, each id once per agent."""
    examples: dict[int, dict[str, list[int]]] = {}
    uses = (
        InContextExample.objects.filter(case_id__in=case_ids)
        .order_by("case_id", "call__agent", "call_id", "position")
        .values_list("case_id", "call__agent", "example_case_id")
    )
    for case_id, agent, example_id in uses:
        shown = examples.setdefault(case_id, {}).setdefault(agent, [])
        if example_id not in shown:
            shown.append(example_id)
    return examples


def pair_records(
    *, cases: QuerySet[Case], groups: list[CodeGroup] | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[PairRecord]:
    """The approved pairs in export order, a chunk of rows in memory at a time."""
    for chunk in _case_pages(cases, code_groups(cases=cases) if groups is None else groups, chunk_size):
        ids = [case.pk for case in chunk]
        version_ids = [
            annotation(case, name) for case in chunk for name in ("approved_note_id", "approved_dialogue_id")
        ]
        versions = ArtefactVersion.objects.in_bulk(version_ids)
        scenarios = current_versions_of_cases(case_ids=ids, kind=ArtefactKind.SCENARIO)
        models = _models_by_case(ids)
        examples = _examples_by_case(ids)
        decisions: dict[int, list[ReviewDecision]] = {}
        for decision in (
            ReviewDecision.objects.filter(case_id__in=ids).select_related("reviewer").order_by("created_at", "id")
        ):
            decisions.setdefault(decision.case_id, []).append(decision)
        for case in chunk:
            yield PairRecord(
                case=case,
                note=versions[annotation(case, "approved_note_id")],
                dialogue=versions[annotation(case, "approved_dialogue_id")],
                scenario=scenarios.get((case.pk, ArtefactKind.SCENARIO)),
                decisions=decisions.get(case.pk, []),
                models=models.get(case.pk, {}),
                examples=examples.get(case.pk, {}),
            )
