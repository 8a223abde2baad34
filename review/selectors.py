"""Read-only queries behind the review screens. Every list query has a fixed number
of SQL statements whatever the number of items (select_related / annotations)."""

from __future__ import annotations

import statistics
import threading
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Case as SqlCase
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Mod

from generation.models import (
    BATCH_ASSIGNMENT_REQUIRED,
    REVIEW_STAGE_BY_STATUS,
    REVIEW_STATUS_BY_STAGE,
    AgentCall,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    GenerationBatch,
    PipelineStep,
    QualityVariable,
    ReviewStage,
    SurveySnapshot,
    code_compact,
)
from generation.models import VersionSource as Source
from generation.selectors import has_near_duplicates
from generation.services.checks import check_summary_match
from review.agreement import LabelCounts, RatingTally, label_counts
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
    check: str = ""  # a check code: only cases whose current versions it flags
    severity: str = ""  # only cases with a finding of this severity
    near_duplicates: bool = False  # only cases with a near-duplicate anywhere in the dataset
    uncoded: bool = False  # only cases imported with their code to be assigned

    def as_query(self) -> dict[str, Any]:
        values = {
            "code": self.code,
            "chapter": self.chapter,
            "batch": self.batch or "",
            "status": self.status,
            "flagged": "1" if self.flagged else "",
            "q": self.search,
            "check": self.check,
            "severity": self.severity,
            "near_duplicates": "1" if self.near_duplicates else "",
            "uncoded": "1" if self.uncoded else "",
        }
        return {key: value for key, value in values.items() if value}


def stage_for_case(*, case: Case) -> str | None:
    return REVIEW_STAGE_BY_STATUS.get(case.status)


# --- The review round ----------------------------------------------------------------
# A round is the span in which neither the case's status nor its content changes. It starts
# when the case enters its review status or when its content changes (a new version that can
# be current: an edit, or the agents' output of a regeneration), whichever is later: the
# case's round_started_at, which generation.services.cases keeps. So a verdict counts only
# for the very content it judged: after an edit, earlier approvals (and refusals) belong to
# an earlier round, their reviewers see the case again, and the round's verdicts all name
# the same versions. Every "this round" question is built from the expressions below: for
# one case (round_start_of) and in queries over many cases (_round_verdicts, _with_round_reviews).


def round_start_of(case: Case) -> Subquery:
    """When the case's round began, read from the database (the instance may predate a write)."""
    return Subquery(Case.objects.filter(pk=case.pk).values("round_started_at")[:1])


def made_this_round(*, started: Any, through: str = "") -> Q:
    """Rows (decisions, versions) made since the round began."""
    return Q(**{f"{through}created_at__gte": started})


def is_verdict(*, through: str = "") -> Q:
    """Decisions that count towards the reviews per item: a skip is recorded but decides
    nothing, and an adjudication settles a dispute rather than being one of its reviews."""
    return Q(**{f"{through}is_adjudication": False, f"{through}action__in": VERDICT_ACTIONS})


def _round_verdicts() -> QuerySet[ReviewDecision]:
    """The verdicts of the current round of the case of an outer query."""
    started = OuterRef("round_started_at")
    return ReviewDecision.objects.filter(made_this_round(started=started), is_verdict(), case=OuterRef("pk"))


def _how_many(decisions: QuerySet[ReviewDecision]) -> Coalesce:
    counted = decisions.order_by().values("case").annotate(how_many=Count("pk")).values("how_many")
    return Coalesce(Subquery(counted), 0)


def _with_round_reviews(cases: QuerySet[Case]) -> QuerySet[Case]:
    """Per case, this round's verdicts (round_reviews): a subquery on the case's own decisions
    (an index lookup), so a queue's first page is read without counting every case's decisions."""
    return cases.annotate(round_reviews=_how_many(_round_verdicts()))


@dataclass(frozen=True)
class RoundTally:
    """The verdicts of a case's current round (accepts + refusals = reviews)."""

    reviews: int
    accepts: int
    refusals: int


def round_tally(*, case: Case) -> RoundTally:
    verdicts = _round_verdicts()
    cases = _with_round_reviews(Case.objects.filter(pk=case.pk)).annotate(
        round_accepts=_how_many(verdicts.filter(action__in=ACCEPTING_ACTIONS)),
        round_refusals=_how_many(verdicts.filter(action__in=REFUSING_ACTIONS)),
    )
    counts = cases.values("round_reviews", "round_accepts", "round_refusals")[0]
    return RoundTally(
        reviews=counts["round_reviews"], accepts=counts["round_accepts"], refusals=counts["round_refusals"]
    )


def _decisions_this_round(*, reviewer: User, case: Any, started: Any) -> QuerySet[ReviewDecision]:
    """The reviewer's decisions in the case's current round, a skip included."""
    return ReviewDecision.objects.filter(made_this_round(started=started), case=case, reviewer=reviewer)


def reviewer_has_decided(*, case: Case, reviewer: User) -> bool:
    """Whether the reviewer gave their verdict in this round. A skip is no decision."""
    decisions = _decisions_this_round(reviewer=reviewer, case=case, started=round_start_of(case))
    return decisions.filter(is_verdict()).exists()


def reviewer_has_edited(*, case: Case, reviewer: User) -> bool:
    """Whether the reviewer made the latest change to the case's content (an edit: it began this round)."""
    edits = case.versions.filter(made_this_round(started=round_start_of(case)), source=Source.HUMAN_EDIT)
    return edits.filter(author=reviewer).exists()


def sees_others_work(*, case: Case, viewer: User, can_adjudicate: bool) -> bool:
    """Blind review: other reviewers' names, verdicts and comments reach a reviewer only once
    they have approved, rejected or edited in this round (a skip lifts nothing). Admins,
    who adjudicate, see everything."""
    if can_adjudicate:
        return True
    return reviewer_has_decided(case=case, reviewer=viewer) or reviewer_has_edited(case=case, reviewer=viewer)


def _apply_filters(cases: QuerySet[Case], filters: QueueFilters) -> QuerySet[Case]:
    if filters.code:
        cases = cases.filter(code__code_compact__startswith=code_compact(filters.code))
    if filters.chapter:
        cases = cases.filter(code__chapter=filters.chapter)
    if filters.batch:
        cases = cases.filter(batch_id=filters.batch)
    if filters.status:
        cases = cases.filter(status=filters.status)
    if filters.flagged:
        cases = cases.filter(has_check_flags=True)
    if filters.near_duplicates:
        cases = cases.filter(has_near_duplicates())
    if filters.uncoded:
        cases = cases.filter(code__isnull=True)
    if filters.check or filters.severity:
        cases = cases.filter(check_summary__contains=check_summary_match(code=filters.check, severity=filters.severity))
    if filters.search:
        term = filters.search.strip()
        match = Q(code__description__icontains=term) | Q(code__code__icontains=term) | Q(batch__name__icontains=term)
        if term.isdigit():
            match |= Q(pk=int(term))
        cases = cases.filter(match)
    return cases


# --- Assignments -------------------------------------------------------------------
# Once a case's current stage has assignees, only they (and admins) review it; a batch whose
# config sets BATCH_ASSIGNMENT_REQUIRED opens its cases to their assignees only.


def _assignments_for_current_stage(case: Any) -> QuerySet[ReviewerAssignment]:
    """The case's assignments for the stage it is reviewed at now (`case`: a case, an id or an OuterRef)."""
    current_stage = Q()
    for status, stage in REVIEW_STAGE_BY_STATUS.items():
        current_stage |= Q(stage=stage, case__status=status)
    return ReviewerAssignment.objects.filter(current_stage, case=case)


def _open_to(reviewer: User) -> Q:
    """The assignment rule over cases: assigned to this reviewer for the current stage, or
    assigned to nobody in a batch that does not require assignment."""
    assignments = _assignments_for_current_stage(OuterRef("pk"))
    requiring = GenerationBatch.objects.filter(
        pk=OuterRef("batch_id"), **{f"config__{BATCH_ASSIGNMENT_REQUIRED}": True}
    )
    return Exists(assignments.filter(reviewer=reviewer)) | (~Exists(assignments) & ~Exists(requiring))


def case_open_to_reviewer(*, case: Case, reviewer: User) -> bool:
    return Case.objects.filter(_open_to(reviewer), pk=case.pk).exists()


def cases_to_assign(*, stage: str, filters: QueueFilters) -> QuerySet[Case]:
    """What a bulk assignment shares out: the stage's waiting cases, filtered, that have
    nobody assigned for the stage yet, oldest first."""
    cases = _with_round_reviews(Case.objects.filter(status=REVIEW_STATUS_BY_STAGE[stage]))
    cases = cases.filter(round_reviews__lt=F("reviews_required")).exclude(  # type: ignore[misc]
        Exists(_assignments_for_current_stage(OuterRef("pk")))
    )
    return _apply_filters(cases, filters).select_related("code", "role").order_by("id")


# --- Queues --------------------------------------------------------------------------


def _not_yet_decided_by(cases: QuerySet[Case], reviewer: User) -> QuerySet[Case]:
    """Hide what this reviewer already decided (or skipped) in the current round."""
    decided = _decisions_this_round(reviewer=reviewer, case=OuterRef("pk"), started=OuterRef("round_started_at"))
    return cases.exclude(Exists(decided))


def _undecided_for(*, reviewer: User, filters: QueueFilters, can_adjudicate: bool) -> QuerySet[Case]:
    """The cases that still wait for this reviewer's verdict in their round, whatever their
    status: each queue narrows them by status (built once, the queues of a page are its clones)."""
    cases = _with_round_reviews(Case.objects.all())
    cases = _not_yet_decided_by(cases, reviewer).filter(round_reviews__lt=F("reviews_required"))  # type: ignore[misc]
    if not can_adjudicate:
        cases = cases.filter(_open_to(reviewer))
    return _apply_filters(cases, filters)


def _queue_of(
    undecided: QuerySet[Case], *, reviewer: User, queue: str, filters: QueueFilters, can_adjudicate: bool
) -> QuerySet[Case]:
    if queue == ADJUDICATION_QUEUE:
        cases = cases_awaiting_adjudication(filters=filters) if can_adjudicate else Case.objects.none()
    elif queue == ASSIGNED_QUEUE:
        open_assignment = _assignments_for_current_stage(OuterRef("pk")).filter(
            reviewer=reviewer, completed_at__isnull=True
        )
        cases = undecided.filter(Exists(open_assignment), status__in=list(REVIEW_STATUS_BY_STAGE.values()))
    else:
        cases = undecided.filter(status__in=[REVIEW_STATUS_BY_STAGE[queue]])
    return cases.select_related("code", "role", "batch").order_by("id")


def case_queue_for_reviewer(
    *, reviewer: User, queue: str, filters: QueueFilters, can_adjudicate: bool = False
) -> QuerySet[Case]:
    """The cases waiting for this reviewer in one queue, oldest first. Admins (who
    adjudicate) see every waiting case; a clinician only those open to them."""
    undecided = _undecided_for(reviewer=reviewer, filters=filters, can_adjudicate=can_adjudicate)
    return _queue_of(undecided, reviewer=reviewer, queue=queue, filters=filters, can_adjudicate=can_adjudicate)


def cases_awaiting_adjudication(*, filters: QueueFilters) -> QuerySet[Case]:
    """Pairs sent to adjudication, and gated-stage cases whose N reviews disagree."""
    verdicts = _round_verdicts()
    disputed = (
        Q(status__in=list(REVIEW_STATUS_BY_STAGE.values()))
        & Exists(verdicts.filter(action__in=ACCEPTING_ACTIONS))
        & Exists(verdicts.filter(action__in=REFUSING_ACTIONS))
        & Q(round_reviews__gte=F("reviews_required"))
    )
    cases = _with_round_reviews(Case.objects.all())
    return _apply_filters(cases.filter(Q(status=CaseStatus.ADJUDICATION) | disputed), filters)


def case_is_disputed(*, case: Case) -> bool:
    """Whether the case waits for an adjudicator: it is in the adjudication queue."""
    return cases_awaiting_adjudication(filters=QueueFilters()).filter(pk=case.pk).exists()


# A queue is counted only this far: "1000+" tells a reviewer there is plenty of work, and an
# exact count of tens of thousands of waiting cases would cost more than the page's own rows.
QUEUE_COUNT_LIMIT = 1000


@dataclass(frozen=True)
class BoundedCount:
    """How many cases a queue holds, counted up to `limit`; shown as "1000+" beyond it."""

    counted: int
    limit: int

    @property
    def is_bounded(self) -> bool:
        return self.counted > self.limit

    def __str__(self) -> str:
        return f"{self.limit}+" if self.is_bounded else str(self.counted)

    def __float__(self) -> float:  # for |pluralize
        return float(self.counted)


def bounded_counts(counted: dict[str, tuple[QuerySet[Case], int]]) -> dict[str, BoundedCount]:
    """Each (cases, limit) counted up to limit + 1 rows (the database stops there), all in one
    statement: one round trip for a page's several counts, and none of the wrapping that
    QuerySet.count() does around a sliced query."""
    if not counted:
        return {}
    columns: list[str] = []
    params: list[Any] = []
    for cases, limit in counted.values():
        try:
            sql, own_params = cases.order_by().values("pk")[: limit + 1].query.sql_with_params()
        except EmptyResultSet:  # e.g. Case.objects.none(): nothing to ask the database
            columns.append("0")
            continue
        columns.append(f"(SELECT COUNT(*) FROM ({sql}) AS bounded)")  # noqa: S608 (SQL the ORM compiled)
        params.extend(own_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)}", params)
        row = cursor.fetchone()
    return {
        name: BoundedCount(counted=how_many, limit=limit)
        for (name, (_cases, limit)), how_many in zip(counted.items(), row, strict=True)
    }


def queues_of(*, reviewer: User, can_adjudicate: bool) -> dict[str, QuerySet[Case]]:
    """Every queue the reviewer has, unfiltered (what case_queue_for_reviewer answers for each)."""
    queues = [*REVIEW_STATUS_BY_STAGE, ASSIGNED_QUEUE] + ([ADJUDICATION_QUEUE] if can_adjudicate else [])
    undecided = _undecided_for(reviewer=reviewer, filters=QueueFilters(), can_adjudicate=can_adjudicate)
    return {
        queue: _queue_of(
            undecided, reviewer=reviewer, queue=queue, filters=QueueFilters(), can_adjudicate=can_adjudicate
        )
        for queue in queues
    }


def queue_counts(*, reviewer: User, can_adjudicate: bool) -> dict[str, BoundedCount]:
    queues = queues_of(reviewer=reviewer, can_adjudicate=can_adjudicate)
    return bounded_counts({queue: (cases, QUEUE_COUNT_LIMIT) for queue, cases in queues.items()})


def neighbours_in_queue(*, queue: QuerySet[Case], case_id: int) -> tuple[int | None, int | None]:
    """(previous id, next id) around a case in a queue, for j/k and auto-advance."""
    ids = queue.values_list("id", flat=True)
    previous = ids.filter(id__lt=case_id).order_by("-id").first()
    following = ids.filter(id__gt=case_id).order_by("id").first()
    return previous, following


def case_for_review(*, case_id: int) -> Case:
    return Case.objects.select_related("code", "role", "batch__endpoint", "survey_snapshot").get(pk=case_id)


# --- What a reviewer may see (blind review: see sees_others_work) ----------------------


def decisions_visible_to(*, case: Case, viewer: User, sees_others: bool) -> list[ReviewDecision]:
    """Every decision on the case, or, while the viewer is blind, only their own."""
    decisions = ReviewDecision.objects.filter(case=case).select_related("reviewer").order_by("created_at")
    if not sees_others:
        decisions = decisions.filter(reviewer=viewer)
    return list(decisions)


def case_history(*, case: Case) -> list[ArtefactVersion]:
    return list(case.versions.select_related("author", "agent_call", "parent").order_by("kind", "number"))


@dataclass
class Provenance:
    steps: list[PipelineStep] = field(default_factory=list)
    calls: list[AgentCall] = field(default_factory=list)
    # Steps another reviewer asked for, and their calls (whose prompt holds the comment):
    # hidden from a blind viewer.
    hidden_step_ids: set[int] = field(default_factory=set)
    hidden_call_ids: set[int] = field(default_factory=set)


def case_provenance(*, case: Case, viewer: User, sees_others: bool) -> Provenance:
    steps = list(case.steps.select_related("requested_by", "output_version").order_by("created_at"))
    calls = list(case.agent_calls.order_by("created_at"))
    if sees_others:
        return Provenance(steps=steps, calls=calls)
    hidden = {step.pk for step in steps if step.requested_by_id not in (None, viewer.pk)}
    hidden_calls = {call.pk for call in calls if call.step_id in hidden}
    return Provenance(steps=steps, calls=calls, hidden_step_ids=hidden, hidden_call_ids=hidden_calls)


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

ACCEPT, REFUSE = "accept", "refuse"
VERDICT_LABEL: dict[str, str] = {str(action): ACCEPT for action in ACCEPTING_ACTIONS} | {
    str(action): REFUSE for action in REFUSING_ACTIONS
}


# One rated item: a case's stage as one reviewer saw it, i.e. with the versions the verdict
# named (case, stage, scenario, note, dialogue version ids). An approval of note v1 and a
# rejection of note v2 are verdicts on two items, not a disagreement about one. Each reviewer's
# latest verdict on an item is their rating of it.
RatedItem = tuple[int, str, int | None, int | None, int | None]
RATED_ITEM = ("case_id", "stage", "scenario_version_id", "note_version_id", "dialogue_version_id")
# From the latest verdicts (`latest`), per stage: the ratings of each item rated twice or more,
# as one "rating,rating,..." string per item (a rating: reviewer id * 2 + 1 if accepted, else
# + 0), which make the pairs' tables and the items' label counts; and the ratings per reviewer.
# One grouping per part: no join of the ratings back to their items (its sort over every
# rating cost more than the counting). Columns: kind, stage, reviewer, ratings, how many.
_TALLY_SQL = """
WITH latest AS ({verdicts})
SELECT 'item', stage, NULL, {ratings}, COUNT(*) FROM latest GROUP BY {item} HAVING COUNT(*) >= 2
UNION ALL
SELECT 'rater', stage, reviewer_id, NULL, COUNT(*) FROM latest GROUP BY stage, reviewer_id
"""


def _joined_ratings() -> str:
    """An item's ratings as one comma-separated string, in this database's SQL."""
    rating = "CAST(CAST(reviewer_id * 2 + accepted AS INTEGER) AS TEXT)"
    return f"GROUP_CONCAT({rating}, ',')" if connection.vendor == "sqlite" else f"STRING_AGG({rating}, ',')"


def _latest_verdicts_sql(*, batch_id: int | None) -> tuple[str, tuple[Any, ...]]:
    """Each reviewer's latest verdict per item (the last recorded: the highest id), as
    (reviewer_id, the item's columns, accepted 1 or 0). Grouped, not ranked with a window: the
    planner then knows how many rows there are, and the joins above it stay hash joins."""
    decisions = ReviewDecision.objects.filter(is_verdict())
    if batch_id:
        decisions = decisions.filter(case__batch_id=batch_id)
    accepted = SqlCase(When(action__in=ACCEPTING_ACTIONS, then=Value(1)), default=Value(0))
    # The highest 2 * id + accepted is the latest verdict's, and its parity is that verdict's label.
    latest = (
        decisions.order_by().values("reviewer_id", *RATED_ITEM).annotate(accepted=Mod(Max(F("id") * 2 + accepted), 2))
    )
    sql, params = latest.query.sql_with_params()
    return sql, tuple(params)


def _label(accepted: int) -> str:
    return ACCEPT if accepted else REFUSE


def _tally_rows_counted(*, batch_id: int | None) -> list[tuple[Any, ...]]:
    verdicts, params = _latest_verdicts_sql(batch_id=batch_id)
    sql = _TALLY_SQL.format(verdicts=verdicts, item=", ".join(RATED_ITEM), ratings=_joined_ratings())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# The tally's rows as last counted by this process, per batch filter, with the state of the
# decisions they were counted from. Decisions are never edited nor deleted (ImmutableModel), so
# their count and highest id change with every decision recorded (the count also with one
# committed after a decision of a higher id): an equal state means the same rows.
_tally_rows_kept: dict[int | None, tuple[tuple[int, int], list[tuple[Any, ...]]]] = {}
_tally_rows_lock = threading.Lock()


def _decisions_state() -> tuple[int, int]:
    state = ReviewDecision.objects.aggregate(highest=Max("id"), recorded=Count("id"))
    return state["highest"] or 0, state["recorded"]


def _tally_rows(*, batch_id: int | None) -> list[tuple[Any, ...]]:
    """The tally's rows, counted again only once a decision was recorded since they were last
    counted (every time with settings.AGREEMENT_TALLY_CACHE off)."""
    if not settings.AGREEMENT_TALLY_CACHE:
        return _tally_rows_counted(batch_id=batch_id)
    state = _decisions_state()  # read first: rows counted after it hold at least these decisions
    with _tally_rows_lock:
        kept = _tally_rows_kept.get(batch_id)
    if kept is not None and kept[0] == state:
        return kept[1]
    rows = _tally_rows_counted(batch_id=batch_id)
    with _tally_rows_lock:
        _tally_rows_kept[batch_id] = (state, rows)
    return rows


def _pair_tables(rated_items: list[list[tuple[str, str]]]) -> dict[tuple[Hashable, Hashable], Counter[Any]]:
    """Per pair of raters (in the order of their names), their labels on the items both rated."""
    tables: dict[tuple[Hashable, Hashable], Counter[Any]] = {}
    for ratings in rated_items:
        for (first, label_first), (second, label_second) in combinations(sorted(ratings), 2):
            tables.setdefault((first, second), Counter())[label_first, label_second] += 1
    return tables


def verdict_tallies(*, batch_id: int | None = None) -> dict[str, RatingTally]:
    """Per review stage (every stage, even without verdicts), the tally of each reviewer's
    latest verdict per item, counted by the database: the agreement page's input."""
    rows = _tally_rows(batch_id=batch_id)
    raters = {row[2] for row in rows if row[0] == "rater"}
    name = dict(get_user_model().objects.filter(pk__in=raters).values_list("pk", "username"))
    stages = ReviewStage.values
    ratings: dict[str, dict[str, int]] = {stage: {} for stage in stages}
    shared: dict[str, list[list[tuple[str, str]]]] = {stage: [] for stage in stages}
    items_by_accepts: dict[str, Counter[tuple[int, int]]] = {stage: Counter() for stage in stages}
    for kind, stage, reviewer, joined, count in rows:
        if kind == "item":
            item = [(name[int(rating) // 2], _label(int(rating) % 2)) for rating in joined.split(",")]
            shared[stage].append(item)
            accepts = sum(label == ACCEPT for _, label in item)
            items_by_accepts[stage][accepts, len(item) - accepts] += 1
        else:
            ratings[stage][name[reviewer]] = count
    return {
        stage: RatingTally(
            raters=tuple(sorted(ratings[stage], key=str)),
            ratings=sum(ratings[stage].values()),
            pairs=_pair_tables(shared[stage]),
            items_by_labels=_by_labels(items_by_accepts[stage]),
        )
        for stage in stages
    }


def _by_labels(items_by_accepts: Counter[tuple[int, int]]) -> Counter[LabelCounts]:
    """Items counted per (accepts, refusals), as RatingTally counts them: per labels received."""
    return Counter(
        {
            label_counts([ACCEPT] * accepts + [REFUSE] * refusals): items
            for (accepts, refusals), items in items_by_accepts.items()
        }
    )


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
