"""Read-only queries of the generation domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.models import (
    CODE_TO_BE_ASSIGNED,
    DELIVERED_SOURCES,
    FAILED_STATUSES,
    IN_FLIGHT_STATUSES,
    AgentCall,
    AgentName,
    ArtefactKind,
    ArtefactVersion,
    BatchStatus,
    CallErrorKind,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    NearDuplicatePair,
    PauseReason,
    PhysicianRole,
    PipelineStep,
    QualityVariable,
    StepStatus,
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


def status_rows(by_status: dict[str, int]) -> list[tuple[str, str, int]]:
    """(status, label, count) for every status that has cases, in state-machine order."""
    return [(status.value, status.label, by_status[status.value]) for status in CaseStatus if status.value in by_status]


def case_counts_by_status() -> list[tuple[str, str, int]]:
    return status_rows(case_status_counts(Case.objects.all()))


def recent_batches(*, limit: int = 10) -> QuerySet[GenerationBatch]:
    return GenerationBatch.objects.select_related("endpoint", "created_by")[:limit]


def _current_first(versions: QuerySet[ArtefactVersion]) -> QuerySet[ArtefactVersion]:
    """The one rule for "the current version of an artefact": the newest version that is
    not a draft. A draft (a refused, conflicting edit kept so no text is lost) is history,
    never current. Ordered so the first row per (case, kind) is the current one."""
    return versions.exclude(source=VersionSource.HUMAN_DRAFT).order_by("case_id", "kind", "-number")


def _only_current(versions: QuerySet[ArtefactVersion]) -> QuerySet[ArtefactVersion]:
    """The current version of each (case, kind) among `versions`, chosen by the database: a case
    edited many times has many versions, and only the current ones are read (on PostgreSQL by
    DISTINCT ON, elsewhere by comparing each version's number with its newest)."""
    if connection.features.can_distinct_on_fields:
        return _current_first(versions).distinct("case_id", "kind")
    newest = _current_first(ArtefactVersion.objects.filter(case_id=OuterRef("case_id"), kind=OuterRef("kind")))
    return _current_first(versions).filter(number=Subquery(newest.values("number")[:1]))


def current_version(*, case: Case, kind: str) -> ArtefactVersion | None:
    return _current_first(case.versions.filter(kind=kind)).first()


def current_versions_of_cases(
    *, case_ids: Iterable[int], kind: str | None = None
) -> dict[tuple[int, str], ArtefactVersion]:
    """{(case id, kind): its current version} for many cases in one query."""
    versions = ArtefactVersion.objects.filter(case_id__in=list(case_ids)).select_related("author")
    if kind is not None:
        versions = versions.filter(kind=kind)
    return {(version.case_id, version.kind): version for version in _only_current(versions)}


class StoredChecks(NamedTuple):
    """A version's id and the check results stored on it."""

    pk: int
    flags: list[Any]
    versions: dict[str, int]


def current_version_checks(*, case: Case) -> dict[str, StoredChecks]:
    """{kind: id and check results of its current version} of one case, in one query of four columns."""
    rows = _only_current(case.versions.all()).values_list("kind", "pk", "check_flags", "check_versions")
    return {kind: StoredChecks(pk, flags, versions) for kind, pk, flags, versions in rows}


def current_versions(*, case: Case) -> dict[str, ArtefactVersion]:
    """{kind: current version} of one case."""
    return {version.kind: version for version in _only_current(case.versions.select_related("author"))}


def current_texts_of_cases(*, case_ids: Iterable[int], kinds: Iterable[str]) -> dict[tuple[int, str], tuple[int, str]]:
    """{(case id, kind): (id, text) of its current version} for many cases, in one query of four columns."""
    versions = ArtefactVersion.objects.filter(case_id__in=list(case_ids), kind__in=list(kinds))
    rows = _only_current(versions).values_list("case_id", "kind", "pk", "text")
    return {(case_id, kind): (pk, text) for case_id, kind, pk, text in rows}


@dataclass(frozen=True)
class PolisherReport:
    """What the dialogue polisher said it had to add to the generator's dialogue."""

    version_number: int  # the dialogue version it wrote
    missing_facts: list[str]


def dialogue_polisher_report(*, case: Case) -> PolisherReport | None:
    """The latest successful dialogue polisher run's `missing_facts`, for the review screen."""
    step = (
        PipelineStep.objects.filter(case=case, agent=AgentName.DIALOGUE_POLISHER, status=StepStatus.SUCCEEDED)
        .exclude(output_version=None)
        .order_by("-attempt")
        .values("result", "output_version__number")
        .first()
    )
    if step is None:
        return None
    facts = (step["result"] or {}).get("missing_facts") or []
    return PolisherReport(step["output_version__number"], [str(fact) for fact in facts if str(fact).strip()])


def latest_survey_snapshot() -> SurveySnapshot | None:
    """The published survey weights that new generations use."""
    return SurveySnapshot.objects.select_related("published_by").order_by("-version").first()


def default_endpoint() -> LlmEndpoint | None:
    return LlmEndpoint.objects.filter(is_default=True, is_active=True).first()


# --- Batch progress -------------------------------------------------------------------


def is_produced(*, case: Any = None) -> Exists:
    """The one rule for "a produced pair": its dialogue has been handed to review at least once
    (polished or imported); raw agent output waiting for its polisher is not produced yet.
    `case` is an OuterRef (the default: the outer query's case) or a case id."""
    ref: Any = OuterRef("pk") if case is None else case
    return Exists(ArtefactVersion.objects.filter(case=ref, kind=ArtefactKind.DIALOGUE, source__in=DELIVERED_SOURCES))


def case_status_counts(cases: QuerySet[Case]) -> dict[str, int]:
    """{status: number of cases} in one query."""
    return dict(cases.values_list("status").annotate(n=Count("id")).values_list("status", "n"))


@dataclass(frozen=True)
class BatchCounts:
    """The one definition of each batch counter. The batch stores them, moved by deltas as its
    cases move (generation.services.batch_counters; the home page and the admin read them
    there); the batch page counts them live."""

    planned: int
    produced: int  # is_produced
    in_flight: int
    failed: int
    approved: int
    by_status: dict[str, int]


def batch_counts(*, batch_id: int) -> BatchCounts:
    cases = Case.objects.filter(batch_id=batch_id)
    by_status = case_status_counts(cases)
    return BatchCounts(
        planned=sum(by_status.values()),
        produced=cases.filter(is_produced()).count(),
        in_flight=sum(by_status.get(status, 0) for status in IN_FLIGHT_STATUSES),
        failed=sum(by_status.get(status, 0) for status in FAILED_STATUSES),
        approved=by_status.get(CaseStatus.APPROVED, 0),
        by_status=by_status,
    )


def duration_text(seconds: float) -> str:
    minutes, whole_seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {whole_seconds:02d}s" if hours else f"{minutes}m {whole_seconds:02d}s"


def batch_elapsed_seconds(batch: GenerationBatch) -> float:
    """Wall time since the batch started, until it finished (or now)."""
    if batch.started_at is None:
        return 0.0
    return ((batch.finished_at or timezone.now()) - batch.started_at).total_seconds()


def calls_in_flight(*, batch_id: int) -> int:
    """LLM calls under way: a call's AgentCall row is written when its attempt ends, so a
    call in flight is a RUNNING step."""
    return PipelineStep.objects.filter(case__batch_id=batch_id, status=StepStatus.RUNNING).count()


@dataclass(frozen=True)
class BatchPace:
    """How fast a batch goes: pairs produced per minute, and when its last case should settle
    at the rate cases have settled so far."""

    status: str
    produced: int
    settled: int
    remaining: int
    elapsed_seconds: float

    @property
    def pairs_per_minute(self) -> float | None:
        if self.elapsed_seconds < 1:
            return None
        return self.produced * 60 / self.elapsed_seconds

    @property
    def eta_seconds(self) -> float | None:
        if not self.remaining or not self.settled or self.elapsed_seconds < 1:
            return None
        return self.remaining * self.elapsed_seconds / self.settled

    @property
    def eta_text(self) -> str:
        if not self.remaining or self.status == BatchStatus.CANCELLED:
            return "-"
        if self.status == BatchStatus.PAUSED:
            return "paused"
        eta = self.eta_seconds
        return f"about {duration_text(eta)}" if eta is not None else "once the first case settles"


@dataclass(frozen=True)
class BatchSpending:
    """A batch's cost against its estimate and its cap."""

    spent: Decimal
    approved: int
    budget: Decimal | None
    estimate: Decimal | None
    estimate_low: Decimal | None
    estimate_high: Decimal | None
    paused_at_cap: bool

    @property
    def cost_per_approved_pair(self) -> Decimal | None:
        return self.spent / self.approved if self.approved else None

    @property
    def percent_of_estimate(self) -> int | None:
        return int(round(100 * self.spent / self.estimate)) if self.estimate else None

    @property
    def budget_left(self) -> Decimal | None:
        return self.budget - self.spent if self.budget is not None else None


def _estimate_figure(estimate: dict[str, Any] | None, key: str) -> Decimal | None:
    return Decimal(estimate[key]) if estimate and key in estimate else None


def batch_spending(*, batch: GenerationBatch, spent: Decimal, approved: int) -> BatchSpending:
    return BatchSpending(
        spent=spent,
        approved=approved,
        budget=batch.budget,
        estimate=_estimate_figure(batch.cost_estimate, "cost"),
        estimate_low=_estimate_figure(batch.cost_estimate, "cost_low"),
        estimate_high=_estimate_figure(batch.cost_estimate, "cost_high"),
        paused_at_cap=batch.status == BatchStatus.PAUSED and batch.pause_reason == PauseReason.BUDGET,
    )


@dataclass(frozen=True)
class BatchProgress:
    batch_id: int
    name: str
    status: str
    status_label: str
    counts: BatchCounts
    calls: int
    failed_calls: int
    input_tokens: int
    output_tokens: int
    cost: Decimal
    wall_seconds: float
    endpoint_name: str
    model: str
    is_local_demo: bool
    calls_in_flight: int
    pace: BatchPace
    spending: BatchSpending

    @property
    def settled(self) -> int:
        return self.counts.planned - self.counts.in_flight

    @property
    def fraction_done(self) -> float:
        return self.settled / self.counts.planned if self.counts.planned else 1.0

    @property
    def percent_done(self) -> int:
        return int(round(100 * self.fraction_done))

    @property
    def finished(self) -> bool:
        return self.status in (BatchStatus.COMPLETED, BatchStatus.CANCELLED) or self.counts.in_flight == 0

    @property
    def counts_by_status(self) -> list[tuple[str, str, int]]:
        return status_rows(self.counts.by_status)

    @property
    def wall_time_text(self) -> str:
        return duration_text(self.wall_seconds)


def batch_progress(*, batch_id: int) -> BatchProgress:
    """Live counts of a batch: cases by status, LLM calls, tokens and cost."""
    batch = GenerationBatch.objects.select_related("endpoint").get(pk=batch_id)
    calls = AgentCall.objects.filter(case__batch=batch).aggregate(
        calls=Count("id"),
        failed=Count("id", filter=~Q(error_kind="")),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost"),
    )
    counts = batch_counts(batch_id=batch.pk)
    return BatchProgress(
        batch_id=batch.pk,
        name=batch.name,
        status=batch.status,
        status_label=batch.get_status_display(),
        counts=counts,
        calls=calls["calls"] or 0,
        failed_calls=calls["failed"] or 0,
        input_tokens=calls["input_tokens"] or 0,
        output_tokens=calls["output_tokens"] or 0,
        cost=calls["cost"] or Decimal(0),
        wall_seconds=batch_elapsed_seconds(batch),
        endpoint_name=batch.endpoint.name if batch.endpoint else "",
        model=batch.model,
        is_local_demo=bool(batch.endpoint and batch.endpoint.is_local_demo),
        calls_in_flight=calls_in_flight(batch_id=batch.pk),
        pace=BatchPace(
            status=batch.status,
            produced=counts.produced,
            settled=counts.planned - counts.in_flight,
            remaining=counts.in_flight,
            elapsed_seconds=batch_elapsed_seconds(batch),
        ),
        spending=batch_spending(batch=batch, spent=calls["cost"] or Decimal(0), approved=counts.approved),
    )


def batch_for_detail(*, batch_id: int) -> GenerationBatch:
    return GenerationBatch.objects.select_related("endpoint", "created_by").get(pk=batch_id)


# --- Call history, for cost estimates ------------------------------------------------------


@dataclass(frozen=True)
class StepUsage:
    """What one past agent step used: its calls (repairs and retries included) and tokens."""

    calls: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int


def agent_step_usage(*, agent: str, model: str, prompt_version: str, limit: int) -> list[StepUsage]:
    """The most recent `limit` steps of `agent` that called `model` with `prompt_version`,
    one row per step. Regenerations a reviewer asked for are left out: they are not part of
    what a batch's own run costs."""
    rows = (
        AgentCall.objects.filter(
            agent=agent,
            model=model,
            prompt_version=prompt_version,
            step__isnull=False,
            step__requested_by__isnull=True,
        )
        .values("step_id")
        .annotate(
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            cached_input_tokens=Sum("cached_input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
        .order_by("-step_id")[:limit]
    )
    return [
        StepUsage(
            calls=row["calls"],
            input_tokens=row["input_tokens"] or 0,
            cached_input_tokens=row["cached_input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class JudgeHistory:
    verdicts: int
    rejections: int

    @property
    def rejection_rate(self) -> float:
        return self.rejections / self.verdicts if self.verdicts else 0.0


def judge_history(*, model: str) -> JudgeHistory:
    """How often the scenario judge sent a scenario back, in batches run on `model`."""
    counts = PipelineStep.objects.filter(
        agent=AgentName.SCENARIO_JUDGE,
        status=StepStatus.SUCCEEDED,
        requested_by__isnull=True,
        case__batch__model=model,
    ).aggregate(verdicts=Count("id"), rejections=Count("id", filter=Q(result__approved=False)))
    return JudgeHistory(verdicts=counts["verdicts"], rejections=counts["rejections"])


def batch_spent(*, batch_id: int) -> Decimal:
    """What a batch's LLM calls have cost so far."""
    return AgentCall.objects.filter(case__batch_id=batch_id).aggregate(total=Sum("cost"))["total"] or Decimal(0)


def batch_reserved_cost(*, batch_id: int, excluding_step_id: int | None = None) -> Decimal:
    """What the batch's steps in flight still hold against its budget cap: each one's
    reservation less what its calls have cost so far (never below nothing). A step waiting
    in a provider batch is in flight too: the provider bills its line when it answers."""
    running = PipelineStep.objects.filter(case__batch_id=batch_id, status__in=[StepStatus.RUNNING, StepStatus.BATCHED])
    if excluding_step_id is not None:
        running = running.exclude(pk=excluding_step_id)
    held = running.annotate(
        spent=Coalesce(Sum("calls__cost"), Value(Decimal(0)), output_field=DecimalField())
    ).values_list("reserved_cost", "spent")
    return sum((max(reserved - spent, Decimal(0)) for reserved, spent in held), Decimal(0))


# --- The batch list ---------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSummary:
    """One row of the batch list, from the batch's stored counters and two annotations."""

    batch: GenerationBatch
    cost: Decimal
    pace: BatchPace

    @property
    def settled(self) -> int:
        return self.pace.settled

    @property
    def percent_done(self) -> int:
        planned = self.batch.planned_count
        return int(round(100 * self.pace.settled / planned)) if planned else 100


def batches_for_list() -> QuerySet[GenerationBatch]:
    """Every batch, newest first, with its cost (its cases in flight are a stored counter): one
    query per page, however many batches there are."""
    cost = (
        AgentCall.objects.filter(case__batch=OuterRef("pk"))
        .order_by()
        .values("case__batch")
        .annotate(total=Sum("cost"))
        .values("total")
    )
    return (
        GenerationBatch.objects.select_related("created_by")
        .annotate(cost_total=Subquery(cost))
        .order_by("-created_at", "-pk")
    )


def batch_summary(batch: GenerationBatch) -> BatchSummary:
    """The list row of a batch from batches_for_list (no query)."""
    return BatchSummary(
        batch=batch,
        cost=batch.cost_total or Decimal(0),  # type: ignore[attr-defined]
        pace=BatchPace(
            status=batch.status,
            produced=batch.produced_count,
            settled=batch.planned_count - batch.in_flight_count,
            remaining=batch.in_flight_count,
            elapsed_seconds=batch_elapsed_seconds(batch),
        ),
    )


# --- Failures and cases that need an admin ------------------------------------------------

FAILURE_EXAMPLES_PER_REASON = 5
NO_CALL_ERROR = "other"


@dataclass(frozen=True)
class FailureExample:
    case_id: int
    code: str
    agent_label: str
    error: str
    call_id: int | None
    raw_response: str


@dataclass(frozen=True)
class FailureGroup:
    reason: str
    label: str
    count: int
    examples: list[FailureExample]

    @property
    def more(self) -> int:
        """Failures of this reason beyond the examples shown."""
        return self.count - len(self.examples)


def _failure_label(reason: str) -> str:
    if reason == NO_CALL_ERROR:
        return "Failed without an LLM error (see the message)"
    return str(CallErrorKind(reason).label)


def batch_failures(*, batch_id: int, examples_per_reason: int = FAILURE_EXAMPLES_PER_REASON) -> list[FailureGroup]:
    """The batch's failed cases grouped by why their last step failed (the error kind of its
    last LLM call), with a few examples each and the raw reply of that call."""
    newer_failure = PipelineStep.objects.filter(case=OuterRef("case"), status=StepStatus.FAILED, pk__gt=OuterRef("pk"))
    last_call = AgentCall.objects.filter(step=OuterRef("pk")).order_by("-created_at", "-pk")
    failures = (
        PipelineStep.objects.filter(case__batch_id=batch_id, case__status=CaseStatus.FAILED, status=StepStatus.FAILED)
        .exclude(Exists(newer_failure))
        .annotate(
            reason=Coalesce(Subquery(last_call.values("error_kind")[:1]), Value("")),
            last_call_id=Subquery(last_call.values("pk")[:1]),
        )
        .order_by()
    )
    counts = failures.values("reason").annotate(n=Count("pk")).order_by("-n", "reason")
    examples = {
        row["reason"]: list(
            failures.filter(reason=row["reason"]).select_related("case__code").order_by("pk")[:examples_per_reason]
        )
        for row in counts
    }
    call_ids = [step.last_call_id for steps in examples.values() for step in steps if step.last_call_id]
    raw = dict(AgentCall.objects.filter(pk__in=call_ids).values_list("pk", "raw_response"))
    return [
        FailureGroup(
            reason=row["reason"] or NO_CALL_ERROR,
            label=_failure_label(row["reason"] or NO_CALL_ERROR),
            count=row["n"],
            examples=[
                FailureExample(
                    case_id=step.case_id,
                    code=step.case.code.code if step.case.code else CODE_TO_BE_ASSIGNED,
                    agent_label=AgentName(step.agent).label,
                    error=step.error,
                    call_id=step.last_call_id,
                    raw_response=raw.get(step.last_call_id, ""),
                )
                for step in examples[row["reason"]]
            ],
        )
        for row in counts
    ]


def newest_failed_step_id(*, batch_id: int) -> int | None:
    """The newest failed step of the batch: the retry form sends it back, so a second submit
    of the same form retries nothing (see batch_retry_failed)."""
    newest: int | None = PipelineStep.objects.filter(case__batch_id=batch_id, status=StepStatus.FAILED).aggregate(
        n=Max("pk")
    )["n"]
    return newest


def case_for_attention(*, case_id: int) -> Case:
    return Case.objects.select_related("code", "role", "batch").get(pk=case_id)


def active_role_names() -> list[str]:
    return list(PhysicianRole.objects.filter(is_active=True).order_by("name").values_list("name", flat=True))


def cases_needing_attention(*, batch_id: int | None = None) -> QuerySet[Case]:
    """The admin's queue: cases whose scenario reached the judge's rejection cap, and failed
    cases, oldest first."""
    cases = Case.objects.filter(status__in=FAILED_STATUSES).select_related("code", "role", "batch")
    if batch_id is not None:
        cases = cases.filter(batch_id=batch_id)
    return cases.order_by("pk")


def active_endpoints() -> QuerySet[LlmEndpoint]:
    return LlmEndpoint.objects.filter(is_active=True).order_by("-is_default", "name")


# --- Survey ranking --------------------------------------------------------------------

# The paper kept the variables clinicians rated at least this high (1-10 scale).
PRIORITY_WEIGHT = 7.5


@dataclass(frozen=True)
class RankedVariable:
    key: str
    name: str
    description: str
    sub_items: list[str]
    weight: float | None
    priority: bool


def ranked_variables(
    *, snapshot: SurveySnapshot | None, variables: Sequence[QualityVariable] | None = None
) -> list[RankedVariable]:
    """The active variables (read now unless given), most important first by the survey's
    weights (if any)."""
    variables = list(QualityVariable.objects.filter(is_active=True)) if variables is None else variables
    weights = {key: float(value) for key, value in (snapshot.weights if snapshot else {}).items()}
    ranked = sorted(variables, key=lambda v: (-weights.get(v.key, 0.0), v.position)) if weights else variables
    return [
        RankedVariable(
            key=variable.key,
            name=variable.name,
            description=variable.description,
            sub_items=list(variable.sub_items or []),
            weight=round(weights[variable.key], 1) if variable.key in weights else None,
            priority=weights.get(variable.key, 0.0) >= PRIORITY_WEIGHT,
        )
        for variable in ranked
    ]


# --- Near-duplicates (the index: generation.services.near_duplicates) -----------------------


@dataclass(frozen=True)
class NearDuplicateMatch:
    """Another case whose note and/or dialogue nearly duplicates this case's."""

    case: Case
    similarity: dict[str, float]  # kind -> estimated Jaccard similarity

    @property
    def best(self) -> float:
        return max(self.similarity.values())


def near_duplicates_of_case(*, case: Case) -> list[NearDuplicateMatch]:
    """The case's near-duplicates across the whole dataset (any code), most similar first."""
    pairs = NearDuplicatePair.objects.filter(case=case).values_list("other_id", "kind", "similarity")
    similarity: dict[int, dict[str, float]] = {}
    for other_id, kind, score in pairs:
        similarity.setdefault(other_id, {})[kind] = score
    others = Case.objects.select_related("code").in_bulk(list(similarity))
    matches = [NearDuplicateMatch(case=others[pk], similarity=scores) for pk, scores in similarity.items()]
    return sorted(matches, key=lambda match: (-match.best, match.case.pk))


def has_near_duplicates() -> Exists:
    """A filter over cases: the case has at least one near-duplicate."""
    return Exists(NearDuplicatePair.objects.filter(case=OuterRef("pk")))


def near_duplicate_clusters(*, case_ids: Iterable[int]) -> list[frozenset[int]]:
    """The near-duplicate clusters among these cases: the connected components (two or more
    cases) of their near-duplicate pairs, either kind, counting only pairs with both ends
    among them. Sorted by their smallest case id."""
    members = set(case_ids)
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    pairs = NearDuplicatePair.objects.filter(case_id__lt=F("other_id")).values_list("case_id", "other_id")
    for a, b in pairs.iterator(chunk_size=5000):
        if a in members and b in members:
            parent[root(a)] = root(b)
    clusters: dict[int, set[int]] = {}
    for node in parent:
        clusters.setdefault(root(node), set()).add(node)
    return sorted((frozenset(c) for c in clusters.values() if len(c) > 1), key=min)
