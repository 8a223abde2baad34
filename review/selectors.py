"""Read-only queries behind the review screens. Every list query has a fixed number
of SQL statements whatever the number of items (select_related / annotations)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from generation.models import (
    REVIEW_STATUS_BY_STAGE,
    AgentCall,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    PipelineStep,
    QualityVariable,
    ReviewStage,
    SurveySnapshot,
    VersionSource,
)
from review.models import (
    Guideline,
    ReviewAction,
    ReviewDecision,
    ReviewerAssignment,
    SurveyResponse,
    VariableSuggestion,
)

ASSIGNED_QUEUE = "mine"
ADJUDICATION_QUEUE = "adjudication"
QUEUE_LABELS: dict[str, str] = {
    ReviewStage.SCENARIO: "Scenarios",
    ReviewStage.NOTE: "Notes",
    ReviewStage.DIALOGUE: "Dialogues",
    ReviewStage.PAIR: "Final pairs",
    ASSIGNED_QUEUE: "Assigned to me",
    ADJUDICATION_QUEUE: "Adjudication",
}
STAGE_BY_STATUS: dict[str, str] = {status: stage for stage, status in REVIEW_STATUS_BY_STAGE.items()}
STAGE_BY_STATUS[CaseStatus.ADJUDICATION] = ReviewStage.PAIR
# What each stage shows and lets the reviewer edit.
VISIBLE_KINDS: dict[str, tuple[str, ...]] = {
    ReviewStage.SCENARIO: (ArtefactKind.SCENARIO,),
    ReviewStage.NOTE: (ArtefactKind.SCENARIO, ArtefactKind.NOTE),
    ReviewStage.DIALOGUE: (ArtefactKind.SCENARIO, ArtefactKind.NOTE, ArtefactKind.DIALOGUE),
    ReviewStage.PAIR: (ArtefactKind.SCENARIO, ArtefactKind.NOTE, ArtefactKind.DIALOGUE),
}
EDITABLE_KINDS: dict[str, tuple[str, ...]] = {
    ReviewStage.SCENARIO: (),
    ReviewStage.NOTE: (ArtefactKind.NOTE,),
    ReviewStage.DIALOGUE: (ArtefactKind.DIALOGUE,),
    ReviewStage.PAIR: (ArtefactKind.NOTE, ArtefactKind.DIALOGUE),
}
ACCEPTING_ACTIONS = (ReviewAction.APPROVE, ReviewAction.EDIT)
REFUSING_ACTIONS = (ReviewAction.REJECT, ReviewAction.REGENERATE)
# Only these decisions count towards "reviews per item"; a skip is no verdict.
VERDICT_ACTIONS = (*ACCEPTING_ACTIONS, *REFUSING_ACTIONS)


@dataclass(frozen=True)
class QueueFilters:
    code: str = ""
    chapter: str = ""
    batch: int | None = None
    status: str = ""
    flagged: bool = False
    search: str = ""

    def as_query(self) -> dict[str, Any]:
        values = {
            "code": self.code,
            "chapter": self.chapter,
            "batch": self.batch or "",
            "status": self.status,
            "flagged": "1" if self.flagged else "",
            "q": self.search,
        }
        return {key: value for key, value in values.items() if value}


def stage_for_case(*, case: Case) -> str | None:
    return STAGE_BY_STATUS.get(case.status)


def _round_verdicts() -> Q:
    """Decisions of the current review round: made since the case entered its status."""
    return Q(
        decisions__created_at__gte=F("status_changed_at"),
        decisions__is_adjudication=False,
        decisions__action__in=VERDICT_ACTIONS,
    )


def _with_round_counts(cases: QuerySet[Case]) -> QuerySet[Case]:
    return cases.annotate(
        round_reviews=Count("decisions", filter=_round_verdicts(), distinct=True),
        round_accepts=Count(
            "decisions", filter=_round_verdicts() & Q(decisions__action__in=ACCEPTING_ACTIONS), distinct=True
        ),
        round_refusals=Count(
            "decisions", filter=_round_verdicts() & Q(decisions__action__in=REFUSING_ACTIONS), distinct=True
        ),
    )


def _apply_filters(cases: QuerySet[Case], filters: QueueFilters) -> QuerySet[Case]:
    if filters.code:
        compact = filters.code.replace(".", "").upper()
        cases = cases.filter(code__code_compact__startswith=compact)
    if filters.chapter:
        cases = cases.filter(code__chapter=filters.chapter)
    if filters.batch:
        cases = cases.filter(batch_id=filters.batch)
    if filters.status:
        cases = cases.filter(status=filters.status)
    if filters.flagged:
        cases = cases.filter(has_check_flags=True)
    if filters.search:
        term = filters.search.strip()
        match = Q(code__description__icontains=term) | Q(code__code__icontains=term) | Q(batch__name__icontains=term)
        if term.isdigit():
            match |= Q(pk=int(term))
        cases = cases.filter(match)
    return cases


def _not_yet_decided_by(cases: QuerySet[Case], reviewer: User) -> QuerySet[Case]:
    """Hide what this reviewer already decided (or skipped) in the current round."""
    decided = ReviewDecision.objects.filter(
        case=OuterRef("pk"), reviewer=reviewer, created_at__gte=OuterRef("status_changed_at")
    )
    return cases.exclude(Exists(decided))


def _review_queue(*, reviewer: User, statuses: list[str], filters: QueueFilters) -> QuerySet[Case]:
    cases = _with_round_counts(Case.objects.filter(status__in=statuses))
    cases = _not_yet_decided_by(cases, reviewer).filter(round_reviews__lt=F("reviews_required"))  # type: ignore[misc]
    return _apply_filters(cases, filters)


def case_queue_for_reviewer(*, reviewer: User, queue: str, filters: QueueFilters) -> QuerySet[Case]:
    """The cases waiting for this reviewer in one queue, oldest first."""
    if queue == ADJUDICATION_QUEUE:
        cases = cases_awaiting_adjudication(filters=filters)
    elif queue == ASSIGNED_QUEUE:
        open_assignment = ReviewerAssignment.objects.filter(
            case=OuterRef("pk"), reviewer=reviewer, completed_at__isnull=True
        )
        cases = _review_queue(reviewer=reviewer, statuses=list(REVIEW_STATUS_BY_STAGE.values()), filters=filters)
        cases = cases.filter(Exists(open_assignment))
    else:
        cases = _review_queue(reviewer=reviewer, statuses=[REVIEW_STATUS_BY_STAGE[queue]], filters=filters)
    return cases.select_related("code", "role", "batch").order_by("id")


def cases_awaiting_adjudication(*, filters: QueueFilters) -> QuerySet[Case]:
    """Pairs sent to adjudication, and gated-stage cases whose N reviews disagree."""
    cases = _with_round_counts(Case.objects.all())
    disputed = Q(
        status__in=list(REVIEW_STATUS_BY_STAGE.values()),
        round_reviews__gte=F("reviews_required"),
        round_accepts__gt=0,
        round_refusals__gt=0,
    )
    return _apply_filters(cases.filter(Q(status=CaseStatus.ADJUDICATION) | disputed), filters)


def queue_counts(*, reviewer: User, can_adjudicate: bool) -> dict[str, int]:
    queues = [*REVIEW_STATUS_BY_STAGE, ASSIGNED_QUEUE] + ([ADJUDICATION_QUEUE] if can_adjudicate else [])
    return {
        queue: case_queue_for_reviewer(reviewer=reviewer, queue=queue, filters=QueueFilters()).count()
        for queue in queues
    }


def neighbours_in_queue(*, queue: QuerySet[Case], case_id: int) -> tuple[int | None, int | None]:
    """(previous id, next id) around a case in a queue, for j/k and auto-advance."""
    ids = queue.values_list("id", flat=True)
    previous = ids.filter(id__lt=case_id).order_by("-id").first()
    following = ids.filter(id__gt=case_id).order_by("id").first()
    return previous, following


def case_for_review(*, case_id: int) -> Case:
    return Case.objects.select_related("code", "role", "batch__endpoint", "survey_snapshot").get(pk=case_id)


def current_versions(*, case: Case) -> dict[str, ArtefactVersion]:
    """The newest real version of each kind; a conflicting draft is history, not current."""
    current: dict[str, ArtefactVersion] = {}
    versions = case.versions.exclude(source=VersionSource.HUMAN_DRAFT).select_related("author", "agent_call")
    for version in versions.order_by("kind", "-number"):
        current.setdefault(version.kind, version)
    return current


def round_decisions(*, case: Case) -> QuerySet[ReviewDecision]:
    return ReviewDecision.objects.filter(case=case, created_at__gte=case.status_changed_at).select_related("reviewer")


def reviewer_has_decided(*, case: Case, reviewer: User) -> bool:
    return round_decisions(case=case).filter(reviewer=reviewer).exists()


def decisions_visible_to(*, case: Case, viewer: User, can_adjudicate: bool) -> list[ReviewDecision]:
    """Blind review: other reviewers' decisions of the current round stay hidden until the
    viewer has decided; adjudicators see everything."""
    decisions = ReviewDecision.objects.filter(case=case).select_related("reviewer").order_by("created_at")
    if can_adjudicate or reviewer_has_decided(case=case, reviewer=viewer):
        return list(decisions)
    return [d for d in decisions if d.created_at < case.status_changed_at or d.reviewer_id == viewer.pk]


def case_history(*, case: Case) -> list[ArtefactVersion]:
    return list(case.versions.select_related("author", "agent_call", "parent").order_by("kind", "number"))


@dataclass
class Provenance:
    steps: list[PipelineStep] = field(default_factory=list)
    calls: list[AgentCall] = field(default_factory=list)


def case_provenance(*, case: Case) -> Provenance:
    steps = list(case.steps.select_related("requested_by", "output_version").order_by("created_at"))
    calls = list(case.agent_calls.order_by("created_at"))
    return Provenance(steps=steps, calls=calls)


def guidelines() -> QuerySet[Guideline]:
    return Guideline.objects.select_related("updated_by").order_by("position", "id")


def reviewers() -> QuerySet[Any]:
    """Users who may review (through a role or a direct permission)."""
    user_model = get_user_model()
    has_perm = Q(groups__permissions__codename="review_case") | Q(user_permissions__codename="review_case")
    return user_model.objects.filter(has_perm, is_active=True).distinct().order_by("username")


def case_assignments(*, case: Case) -> QuerySet[ReviewerAssignment]:
    return case.assignments.select_related("reviewer").order_by("stage", "reviewer__username")


# --- Agreement -------------------------------------------------------------------

VERDICT_LABEL: dict[str, str] = {str(action): "accept" for action in ACCEPTING_ACTIONS} | {
    str(action): "refuse" for action in REFUSING_ACTIONS
}


def decision_ratings(*, stage: str = "", batch_id: int | None = None) -> dict[str, dict[tuple[int, str], str]]:
    """ratings[reviewer][(case, stage)] = "accept" | "refuse": each reviewer's latest verdict per item."""
    decisions = ReviewDecision.objects.filter(is_adjudication=False, action__in=VERDICT_ACTIONS)
    if stage:
        decisions = decisions.filter(stage=stage)
    if batch_id:
        decisions = decisions.filter(case__batch_id=batch_id)
    ratings: dict[str, dict[tuple[int, str], str]] = {}
    rows = decisions.order_by("created_at").values_list("reviewer__username", "case_id", "stage", "action")
    for reviewer, case_id, decision_stage, action in rows:
        ratings.setdefault(reviewer, {})[(case_id, decision_stage)] = VERDICT_LABEL[action]
    return ratings


# --- Survey ----------------------------------------------------------------------


def survey_round_current() -> int:
    """The open survey round: one past the latest published snapshot (snapshot version = its round)."""
    latest = SurveySnapshot.objects.order_by("-version").values_list("version", flat=True).first()
    return (latest or 0) + 1


def survey_answers(*, clinician: User, round_number: int) -> dict[int, SurveyResponse]:
    responses = SurveyResponse.objects.filter(clinician=clinician, round=round_number)
    return {response.variable_id: response for response in responses}


@dataclass(frozen=True)
class VariableAggregate:
    variable: QualityVariable
    respondents: int
    mean: float | None
    spread: float | None


def survey_aggregate(*, round_number: int) -> list[VariableAggregate]:
    """Mean and spread (sample standard deviation) of each active variable's scores."""
    scores: dict[int, list[int]] = {}
    for variable_id, score in SurveyResponse.objects.filter(round=round_number).values_list("variable_id", "score"):
        scores.setdefault(variable_id, []).append(score)
    aggregates = []
    for variable in QualityVariable.objects.filter(is_active=True).order_by("position"):
        values = scores.get(variable.pk, [])
        aggregates.append(
            VariableAggregate(
                variable=variable,
                respondents=len(values),
                mean=round(statistics.fmean(values), 2) if values else None,
                spread=round(statistics.stdev(values), 2) if len(values) > 1 else None,
            )
        )
    return aggregates


def survey_ratings(*, round_number: int) -> dict[str, dict[str, int]]:
    """ratings[clinician][variable key] = score, for the ordinal agreement of the survey."""
    ratings: dict[str, dict[str, int]] = {}
    rows = SurveyResponse.objects.filter(round=round_number).values_list(
        "clinician__username", "variable__key", "score"
    )
    for clinician, key, score in rows:
        ratings.setdefault(clinician, {})[key] = score
    return ratings


def survey_respondent_count(*, round_number: int) -> int:
    return SurveyResponse.objects.filter(round=round_number).values("clinician").distinct().count()


def variable_suggestions(*, round_number: int) -> QuerySet[VariableSuggestion]:
    return VariableSuggestion.objects.filter(round=round_number).select_related("clinician").order_by("created_at")
