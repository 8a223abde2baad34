"""The dashboard figures: one function per figure, each returning its rows (dicts keyed by
the figure's columns). The chart, the table and the CSV of a figure are all drawn from these
rows, so they cannot disagree.

Every figure takes a fixed number of SQL statements whatever the number of cases: counts
are grouped in the database; what Python loops over is bounded by the number of groups
(chapters, models, reviewers, seconds values, months), never by the number of cases, except
for agreement over time, which reads only the verdicts on items two or more reviewers rated.

Dates: figures about cases (coverage, funnel, edit burden, cost, checks) count the cases
planned in the date range; figures about review work (rates, reasons, throughput,
agreement) count the decisions made in it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.models import (
    DELIVERED_SOURCES,
    AgentCall,
    AgentName,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    ReviewStage,
    VersionSource,
)
from generation.selectors import is_produced
from generation.services.checks import REGISTERED_CHECKS as CHECKS
from generation.services.checks import check_summary_match
from review import agreement
from review.dashboards.filters import DashboardFilters
from review.models import EditBurden, EditedPart, RejectReason, ReviewAction, ReviewDecision
from review.selectors import VERDICT_LABEL, RatedItem, is_verdict

Row = dict[str, Any]
UNKNOWN = "(imported or unknown)"


def share(part: float | Decimal | None, whole: float | Decimal | None) -> float | None:
    """part / whole, None when there is no whole to share."""
    if not whole or part is None:
        return None
    return float(part) / float(whole)


def _chapter_order(chapter: str) -> tuple[int, str]:
    return (int(chapter), chapter) if chapter.isdigit() else (10**6, chapter)


# --- Coverage by ICD chapter and block --------------------------------------------------------


def _coverage(*, filters: DashboardFilters, keys: tuple[str, ...]) -> list[Row]:
    """Planned, generated and approved cases per group of codes (`keys`: IcdCode fields),
    beside the group's share of the imported frequencies. Cases are counted per code (no
    join to the catalogue per case), then codes are summed into their groups."""
    cases = Case.objects.filter(filters.on_cases()).order_by()
    per_code = {
        row["code_id"]: row
        for row in cases.values("code_id").annotate(
            planned=Count("pk"),
            generated=Count("pk", filter=Q(is_produced())),
            approved=Count("pk", filter=Q(status=CaseStatus.APPROVED)),
        )
    }
    codes = IcdCode.objects.filter(Q(frequency__isnull=False) | Q(pk__in=cases.values("code_id"))).order_by()
    groups: dict[tuple[str, ...], Row] = {}
    for code in codes.values("pk", "frequency", *keys):
        group = groups.setdefault(
            tuple(code[key] for key in keys),
            {**{key: code[key] for key in keys}, "planned": 0, "generated": 0, "approved": 0, "frequency": 0},
        )
        group["frequency"] += code["frequency"] or 0
        for name in ("planned", "generated", "approved"):
            group[name] += per_code.get(code["pk"], {}).get(name, 0)
    totals = {name: sum(group[name] for group in groups.values()) for name in ("planned", "approved", "frequency")}
    rows = [
        {
            **group,
            "planned_share": share(group["planned"], totals["planned"]),
            "approved_share": share(group["approved"], totals["approved"]),
            "frequency_share": share(group["frequency"], totals["frequency"]),
        }
        for group in groups.values()
        if group["planned"] or group["frequency"]
    ]
    return sorted(rows, key=lambda row: (_chapter_order(row.get("chapter", "")), *(row[key] for key in keys)))


def coverage_by_chapter(*, filters: DashboardFilters) -> list[Row]:
    return _coverage(filters=filters, keys=("chapter", "chapter_title"))


def coverage_by_block(*, filters: DashboardFilters) -> list[Row]:
    return _coverage(filters=filters, keys=("chapter", "block", "block_title"))


# --- The funnel -------------------------------------------------------------------------------

FUNNEL_STEPS: tuple[tuple[str, str], ...] = (
    ("generated", "Generated (pair handed to review)"),
    ("flagged", "Flagged by the automatic checks"),
    ("approved", "Approved as generated"),
    ("edited", "Approved after reviewer edits"),
    ("rejected", "Rejected"),
    ("regenerated", "Sent back for regeneration (at least once)"),
)


def funnel(*, filters: DashboardFilters) -> list[Row]:
    """Of the produced pairs: how many the checks flag (now), how many were approved with or
    without edits, rejected, or sent back at least once."""
    edited = Exists(ArtefactVersion.objects.filter(case=OuterRef("pk"), source=VersionSource.HUMAN_EDIT))
    regenerated = Exists(ReviewDecision.objects.filter(case=OuterRef("pk"), action=ReviewAction.REGENERATE))
    approved = Q(status=CaseStatus.APPROVED)
    counts = Case.objects.filter(filters.on_cases(), is_produced()).aggregate(
        generated=Count("pk"),
        flagged=Count("pk", filter=Q(has_check_flags=True)),
        approved=Count("pk", filter=approved & ~Q(edited)),
        edited=Count("pk", filter=approved & Q(edited)),
        rejected=Count("pk", filter=Q(status=CaseStatus.REJECTED)),
        regenerated=Count("pk", filter=Q(regenerated)),
    )
    return [
        {"step": step, "label": label, "cases": counts[step], "share": share(counts[step], counts["generated"])}
        for step, label in FUNNEL_STEPS
    ]


# --- Acceptance, edit and reject rates ---------------------------------------------------------

# The artefacts each stage's verdict judges: a final-pair verdict judges the note and the dialogue.
JUDGED_KINDS: dict[str, tuple[str, ...]] = {
    ReviewStage.SCENARIO: (ArtefactKind.SCENARIO,),
    ReviewStage.NOTE: (ArtefactKind.NOTE,),
    ReviewStage.DIALOGUE: (ArtefactKind.DIALOGUE,),
    ReviewStage.PAIR: (ArtefactKind.NOTE, ArtefactKind.DIALOGUE),
}
OUTCOMES: dict[str, str] = {
    "approved": ReviewAction.APPROVE,
    "edited": ReviewAction.EDIT,
    "rejected": ReviewAction.REJECT,
    "regenerated": ReviewAction.REGENERATE,
}


def _verdicts(filters: DashboardFilters) -> QuerySet[ReviewDecision]:
    return ReviewDecision.objects.filter(filters.on_decisions(), is_verdict()).order_by()


def _outcome_counts() -> dict[str, Count]:
    return {
        "verdicts": Count("pk"),
        **{name: Count("pk", filter=Q(action=action)) for name, action in OUTCOMES.items()},
    }


def _rate_rows(groups: Mapping[str, Mapping[str, int]], *, dimension: str) -> list[Row]:
    rows = []
    for value, counts in groups.items():
        row: Row = {dimension: value, "verdicts": counts["verdicts"]}
        for name in OUTCOMES:
            row[name] = counts[name]
            row[f"{name}_rate"] = share(counts[name], counts["verdicts"])
        rows.append(row)
    return sorted(rows, key=lambda row: (-row["verdicts"], str(row[dimension])))


def _origin(kind: str, field: str) -> Coalesce:
    """`field` of the LLM call that wrote the judged text: the judged version's own call, or,
    for a reviewer's edit, the call of the newest agent-written version it was edited from."""
    before_edit = ArtefactVersion.objects.filter(
        case=OuterRef("case_id"),
        kind=kind,
        source__in=DELIVERED_SOURCES,
        agent_call__isnull=False,
        number__lt=OuterRef(f"{kind}_version__number"),
    ).order_by("-number")
    return Coalesce(F(f"{kind}_version__agent_call__{field}"), Subquery(before_edit.values(f"agent_call__{field}")[:1]))


def _rates_by_origin(*, filters: DashboardFilters, field: str) -> dict[str, dict[str, int]]:
    """Verdict counts by the agent, model or prompt version that wrote the judged text; a
    final-pair verdict counts once for its note and once for its dialogue."""
    groups: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(["verdicts", *OUTCOMES], 0))
    for kind in (ArtefactKind.SCENARIO, ArtefactKind.NOTE, ArtefactKind.DIALOGUE):
        stages = [stage for stage, kinds in JUDGED_KINDS.items() if kind in kinds]
        judged = _verdicts(filters).filter(stage__in=stages, **{f"{kind}_version__isnull": False})
        for row in judged.annotate(origin=_origin(kind, field)).values("origin").annotate(**_outcome_counts()):
            group = groups[row["origin"] or UNKNOWN]
            for name in group:
                group[name] += row[name]
    return groups


def _agent_label(agent: str) -> str:
    return str(AgentName(agent).label) if agent in AgentName.values else agent


def rates_by_agent(*, filters: DashboardFilters) -> list[Row]:
    groups = _rates_by_origin(filters=filters, field="agent")
    return _rate_rows({_agent_label(agent): counts for agent, counts in groups.items()}, dimension="agent")


def rates_by_model(*, filters: DashboardFilters) -> list[Row]:
    return _rate_rows(_rates_by_origin(filters=filters, field="model"), dimension="model")


def rates_by_prompt_version(*, filters: DashboardFilters) -> list[Row]:
    return _rate_rows(_rates_by_origin(filters=filters, field="prompt_version"), dimension="prompt_version")


def rates_by_chapter(*, filters: DashboardFilters) -> list[Row]:
    """Verdict counts by the ICD chapter of the case (each verdict once)."""
    rows = _verdicts(filters).values("case__code__chapter", "case__code__chapter_title").annotate(**_outcome_counts())
    groups = {f"{row['case__code__chapter']}: {row['case__code__chapter_title']}": row for row in rows}
    return _rate_rows(groups, dimension="chapter")


def reject_reasons(*, filters: DashboardFilters) -> list[Row]:
    """Rejections by reason, most frequent first."""
    rejections = ReviewDecision.objects.filter(filters.on_decisions(), action=ReviewAction.REJECT).order_by()
    counts = list(rejections.values("reason").annotate(n=Count("pk")).order_by("-n", "reason"))
    total = sum(row["n"] for row in counts)
    labels = dict(RejectReason.choices)
    return [
        {"reason": row["reason"], "label": labels.get(row["reason"], row["reason"]), "rejections": row["n"],
         "share": share(row["n"], total)}
        for row in counts
    ]  # fmt: skip


# --- Edit burden ------------------------------------------------------------------------------


def edit_burden(*, filters: DashboardFilters) -> list[Row]:
    """Per SOAP section and for the dialogue: approved pairs measured, how many a reviewer
    changed, and the word-level edit distance (mean per pair, and per 100 generated words)."""
    burdens = EditBurden.objects.filter(filters.on_cases(through="case__")).order_by()
    totals = {
        row["part"]: row
        for row in burdens.values("part").annotate(
            pairs=Count("pk"),
            edited_pairs=Count("pk", filter=Q(distance__gt=0)),
            distance=Sum("distance"),
            words=Sum("generated_words"),
        )
    }
    rows = []
    for part in EditedPart:
        found = totals.get(part.value, {"pairs": 0, "edited_pairs": 0, "distance": 0, "words": 0})
        rows.append(
            {
                "part": part.label,
                "pairs": found["pairs"],
                "edited_pairs": found["edited_pairs"],
                "edited_share": share(found["edited_pairs"], found["pairs"]),
                "word_edits": found["distance"] or 0,
                "mean_word_edits": share(found["distance"], found["pairs"]),
                "word_edits_per_100_words": None if not found["words"] else 100 * found["distance"] / found["words"],
            }
        )
    return rows


# --- Reviewers --------------------------------------------------------------------------------


def median_of_counts(counts: Mapping[int, int]) -> float | None:
    """The median of values given as {value: how many times}."""
    total = sum(counts.values())
    if not total:
        return None
    middle = [(total - 1) // 2, total // 2]
    found: list[int] = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while middle and middle[0] < seen:
            found.append(value)
            middle.pop(0)
    return (found[0] + found[1]) / 2


def reviewer_throughput(*, filters: DashboardFilters, reviewer: User | None = None) -> list[Row]:
    """Per reviewer: decisions made (by action) and the median and total time spent per
    decision. With `reviewer`, only theirs (what a clinician sees)."""
    decisions = ReviewDecision.objects.filter(filters.on_decisions()).order_by()
    if reviewer is not None:
        decisions = decisions.filter(reviewer=reviewer)
    by_action: dict[str, dict[str, int]] = defaultdict(dict)
    for row in decisions.values("reviewer__username", "action").annotate(n=Count("pk")):
        by_action[row["reviewer__username"]][row["action"]] = row["n"]
    seconds: dict[str, dict[int, int]] = defaultdict(dict)
    for row in decisions.values("reviewer__username", "seconds_spent").annotate(n=Count("pk")):
        seconds[row["reviewer__username"]][row["seconds_spent"]] = row["n"]
    rows = []
    for username, actions in by_action.items():
        spent = seconds[username]
        rows.append(
            {
                "reviewer": username,
                "decisions": sum(actions.values()),
                **{name: actions.get(action, 0) for name, action in OUTCOMES.items()},
                "skipped": actions.get(ReviewAction.SKIP, 0),
                "median_seconds": median_of_counts(spent),
                "hours": sum(value * n for value, n in spent.items()) / 3600,
            }
        )
    return sorted(rows, key=lambda row: (-row["decisions"], row["reviewer"]))


def _month(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m")


def agreement_over_time(*, filters: DashboardFilters) -> list[Row]:
    """Per month: the items (a stage of a case with the versions judged) that two or more
    reviewers gave a verdict on, how often all their verdicts agree, and Krippendorff's
    alpha. An item belongs to the month of its latest verdict."""
    verdicts = _verdicts(filters)
    overlapping = verdicts.values("case").annotate(raters=Count("reviewer", distinct=True)).filter(raters__gte=2)
    rows = verdicts.filter(case__in=overlapping.values("case")).order_by("created_at", "pk")
    ratings: dict[RatedItem, dict[str, str]] = defaultdict(dict)
    latest: dict[RatedItem, dt.datetime] = {}
    values = rows.values_list(
        "reviewer__username", "case_id", "stage", "scenario_version_id", "note_version_id", "dialogue_version_id",
        "action", "created_at",
    )  # fmt: skip
    for reviewer, case_id, stage, scenario, note, dialogue, action, created_at in values:
        item: RatedItem = (case_id, stage, scenario, note, dialogue)
        ratings[item][reviewer] = VERDICT_LABEL[action]
        latest[item] = created_at
    months: dict[str, list[RatedItem]] = defaultdict(list)
    for item, labels in ratings.items():
        if len(labels) >= 2:
            months[_month(latest[item])].append(item)
    return [_agreement_row(month, items, ratings) for month, items in sorted(months.items())]


def _agreement_row(month: str, items: Iterable[RatedItem], ratings: Mapping[RatedItem, Mapping[str, str]]) -> Row:
    by_rater: dict[str, dict[RatedItem, str]] = defaultdict(dict)
    unanimous = total = 0
    for item in items:
        total += 1
        unanimous += len(set(ratings[item].values())) == 1
        for rater, label in ratings[item].items():
            by_rater[rater][item] = label
    alpha = agreement.krippendorff_alpha(agreement.tally(by_rater))
    return {
        "month": month,
        "items": total,
        "raters": len(by_rater),
        "unanimous_share": share(unanimous, total),
        "alpha": alpha.value,
    }


# --- Cost and checks --------------------------------------------------------------------------


def cost_per_approved_pair(*, filters: DashboardFilters) -> list[Row]:
    """Per model: every LLM call made for the filtered cases (failed and rejected work
    included: it is what the approved pairs cost), divided by the approved pairs it served."""
    calls = AgentCall.objects.filter(filters.on_cases(through="case__"), case__isnull=False).order_by()
    grouped = calls.values("model").annotate(
        calls=Count("pk"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost"),
        approved_pairs=Count("case", distinct=True, filter=Q(case__status=CaseStatus.APPROVED)),
    )
    rows = []
    for row in grouped.order_by("model"):
        tokens = (row["input_tokens"] or 0) + (row["output_tokens"] or 0)
        rows.append(
            {
                "model": row["model"],
                "calls": row["calls"],
                "input_tokens": row["input_tokens"] or 0,
                "output_tokens": row["output_tokens"] or 0,
                "cost": row["cost"] or Decimal(0),
                "approved_pairs": row["approved_pairs"],
                "tokens_per_pair": share(tokens, row["approved_pairs"]),
                "cost_per_pair": share(row["cost"] or Decimal(0), row["approved_pairs"]),
            }
        )
    return rows


def _kinds_key(kinds: Iterable[str]) -> str:
    return "checked_" + "_".join(sorted(kinds))


def check_failure_rates(*, filters: DashboardFilters) -> list[Row]:
    """Per automatic check (every check of the registry): the cases with a text it reads,
    and how many of them it flags on their current versions."""
    has: dict[str, Exists] = {
        kind: Exists(
            ArtefactVersion.objects.filter(case=OuterRef("pk"), kind=kind).exclude(source=VersionSource.HUMAN_DRAFT)
        )
        for kind in (ArtefactKind.NOTE, ArtefactKind.DIALOGUE)
    }
    kind_sets = {_kinds_key(check.kinds): check.kinds for check in CHECKS}
    checked = {key: Count("pk", filter=_any_of(has, kinds)) for key, kinds in kind_sets.items()}
    flagged = {
        f"flagged_{check.code}": Count("pk", filter=Q(check_summary__contains=check_summary_match(code=check.code)))
        for check in CHECKS
    }
    counts = Case.objects.filter(filters.on_cases()).aggregate(**checked, **flagged)
    return [
        {
            "check": check.code,
            "title": check.title,
            "severity": str(check.severity),
            "checked": counts[_kinds_key(check.kinds)],
            "flagged": counts[f"flagged_{check.code}"],
            "rate": share(counts[f"flagged_{check.code}"], counts[_kinds_key(check.kinds)]),
        }
        for check in CHECKS
    ]


def _any_of(has: Mapping[str, Exists], kinds: Iterable[str]) -> Q:
    query = Q()
    for kind in kinds:
        query |= Q(has[kind])
    return query


# --- The filters' choices ---------------------------------------------------------------------


def batch_choices() -> list[tuple[int, str]]:
    return list(GenerationBatch.objects.order_by("-created_at", "-pk").values_list("pk", "name"))


def model_choices() -> list[str]:
    models = GenerationBatch.objects.exclude(model="").order_by("model").values_list("model", flat=True).distinct()
    return list(models)
