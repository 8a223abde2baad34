"""The catalogue of dashboard figures: for each, its title, what it counts, its columns, how
its chart draws its rows, and the selector that computes them. The table, the chart data
and the CSV are all built here from the one list of rows a selector returns."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AnonymousUser, User

from medsynth_site.csv_cells import csv_safe
from review.dashboards import selectors
from review.dashboards.filters import DashboardFilters
from review.dashboards.selectors import Row

# Who sees every figure and every reviewer; anyone else who reviews sees their own throughput.
SEES_ALL_FIGURES = "review.view_reviewdecision"
REVIEWS = "review.review_case"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # text | count | share (0-1, shown as %) | number | money | seconds
    kind: str = "count"


@dataclass(frozen=True)
class Chart:
    """How the rows draw: one category per row (`label`), one series per column in `series`."""

    type: str  # "bar" or "line"
    label: str
    series: tuple[str, ...]
    horizontal: bool = False
    percent: bool = False
    stacked: bool = False  # the series are parts of one whole (rates that add up to 100%)


@dataclass(frozen=True)
class Figure:
    slug: str
    title: str
    about: str
    columns: tuple[Column, ...]
    chart: Chart
    compute: Callable[[DashboardFilters, User | None], list[Row]]
    for_clinicians: bool = False
    column_by_key: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_by_key", {column.key: column for column in self.columns})


def _everyone(select: Callable[..., list[Row]]) -> Callable[[DashboardFilters, User | None], list[Row]]:
    return lambda filters, _reviewer: select(filters=filters)


COUNTS = (Column("planned", "Planned"), Column("generated", "Generated"), Column("approved", "Approved"))
SHARES = (
    Column("planned_share", "Share of planned", "share"),
    Column("approved_share", "Share of approved", "share"),
    Column("frequency_share", "Share of imported frequency", "share"),
)
RATES = (
    Column("verdicts", "Verdicts"),
    Column("approved", "Approved"),
    Column("edited", "Edited"),
    Column("rejected", "Rejected"),
    Column("regenerated", "Regenerated"),
    Column("approved_rate", "Acceptance rate", "share"),
    Column("edited_rate", "Edit rate", "share"),
    Column("rejected_rate", "Reject rate", "share"),
    Column("regenerated_rate", "Regenerate rate", "share"),
)
RATE_CHART = ("approved_rate", "edited_rate", "rejected_rate", "regenerated_rate")
ORIGIN_NOTE = (
    "Each verdict counts for the agent, model and prompt version that wrote the text judged (for a reviewer's "
    "edit, the agent text it was edited from); a final-pair verdict counts once for the note and once for the "
    "dialogue. Acceptance = approved as is. Verdicts made in the date range."
)


def _rates_figure(slug: str, title: str, key: str, label: str, select: Callable[..., list[Row]], about: str) -> Figure:
    return Figure(
        slug=slug,
        title=title,
        about=about,
        columns=(Column(key, label, "text"), *RATES),
        chart=Chart("bar", key, RATE_CHART, horizontal=True, percent=True, stacked=True),
        compute=_everyone(select),
    )


FIGURES: tuple[Figure, ...] = (
    Figure(
        slug="coverage-chapter",
        title="Coverage by ICD chapter",
        about="Cases planned in the date range, produced pairs and approved pairs per ICD-10-CM chapter, beside "
        "the chapter's share of the imported code frequencies.",
        columns=(Column("chapter", "Chapter", "text"), Column("chapter_title", "Title", "text"), *COUNTS, *SHARES),
        chart=Chart("bar", "chapter", ("planned_share", "approved_share", "frequency_share"), percent=True),
        compute=_everyone(selectors.coverage_by_chapter),
    ),
    Figure(
        slug="coverage-block",
        title="Coverage by ICD block",
        about="The same per block of codes (e.g. E08-E13).",
        columns=(
            Column("chapter", "Chapter", "text"),
            Column("block", "Block", "text"),
            Column("block_title", "Title", "text"),
            *COUNTS,
            *SHARES,
        ),
        chart=Chart("bar", "block", ("planned_share", "approved_share", "frequency_share"), percent=True),
        compute=_everyone(selectors.coverage_by_block),
    ),
    Figure(
        slug="funnel",
        title="Funnel",
        about="Of the pairs handed to review (cases planned in the date range): flagged by the automatic checks "
        "now, approved as generated, approved after reviewer edits, rejected, and sent back for regeneration at "
        "least once (such a case may also be counted in its final outcome).",
        columns=(
            Column("label", "Step", "text"),
            Column("cases", "Cases"),
            Column("share", "Share of generated", "share"),
        ),
        chart=Chart("bar", "label", ("cases",), horizontal=True),
        compute=_everyone(selectors.funnel),
    ),
    _rates_figure("rates-agent", "Rates by agent", "agent", "Agent", selectors.rates_by_agent, ORIGIN_NOTE),
    _rates_figure("rates-model", "Rates by model", "model", "Model", selectors.rates_by_model, ORIGIN_NOTE),
    _rates_figure(
        "rates-prompt",
        "Rates by prompt version",
        "prompt_version",
        "Prompt version",
        selectors.rates_by_prompt_version,
        ORIGIN_NOTE,
    ),  # fmt: skip
    _rates_figure(
        "rates-chapter",
        "Rates by ICD chapter",
        "chapter",
        "Chapter",
        selectors.rates_by_chapter,
        "Verdicts (approve, edit, reject, regenerate) per chapter of the case's code, each verdict once. "
        "Verdicts made in the date range.",
    ),  # fmt: skip
    Figure(
        slug="reject-reasons",
        title="Top reject reasons",
        about="Rejections made in the date range, by the reason the reviewer chose.",
        columns=(
            Column("label", "Reason", "text"),
            Column("rejections", "Rejections"),
            Column("share", "Share", "share"),
        ),
        chart=Chart("bar", "label", ("rejections",), horizontal=True),
        compute=_everyone(selectors.reject_reasons),
    ),
    Figure(
        slug="edit-burden",
        title="Edit burden",
        about="Word-level edit distance between the text the agents handed to review and the approved text "
        "(words inserted, deleted or substituted), per SOAP section and for the dialogue, over the approved pairs "
        "of the cases planned in the date range.",
        columns=(
            Column("part", "Part", "text"),
            Column("pairs", "Approved pairs"),
            Column("edited_pairs", "Edited"),
            Column("edited_share", "Share edited", "share"),
            Column("word_edits", "Word edits"),
            Column("mean_word_edits", "Word edits per pair", "number"),
            Column("word_edits_per_100_words", "Per 100 generated words", "number"),
        ),
        chart=Chart("bar", "part", ("mean_word_edits", "word_edits_per_100_words")),
        compute=_everyone(selectors.edit_burden),
    ),
    Figure(
        slug="throughput",
        title="Reviewer throughput",
        about="Decisions made in the date range and the time spent on each (from opening the item to deciding, "
        "capped at four hours). Clinicians see their own.",
        columns=(
            Column("reviewer", "Reviewer", "text"),
            Column("decisions", "Decisions"),
            Column("approved", "Approved"),
            Column("edited", "Edited"),
            Column("rejected", "Rejected"),
            Column("regenerated", "Regenerated"),
            Column("skipped", "Skipped"),
            Column("median_seconds", "Median time per decision", "seconds"),
            Column("hours", "Hours", "number"),
        ),
        chart=Chart("bar", "reviewer", ("decisions",)),
        compute=lambda filters, reviewer: selectors.reviewer_throughput(filters=filters, reviewer=reviewer),
        for_clinicians=True,
    ),
    Figure(
        slug="agreement",
        title="Agreement over time",
        about="Per month: items (a case's stage with the versions judged) that two or more reviewers gave a "
        "verdict on, the share where all verdicts agree (approve and edit = accept; reject and regenerate = "
        "refuse), and Krippendorff's alpha (nominal).",
        columns=(
            Column("month", "Month", "text"),
            Column("items", "Items"),
            Column("raters", "Reviewers"),
            Column("unanimous_share", "Unanimous", "share"),
            Column("alpha", "Krippendorff's alpha", "number"),
        ),
        chart=Chart("line", "month", ("unanimous_share", "alpha")),
        compute=_everyone(selectors.agreement_over_time),
    ),
    Figure(
        slug="cost",
        title="Tokens and cost per approved pair",
        about="Every LLM call made for the cases planned in the date range (failed calls and rejected cases "
        "included: they are part of what an approved pair costs), per model, divided by the approved pairs.",
        columns=(
            Column("model", "Model", "text"),
            Column("calls", "LLM calls"),
            Column("input_tokens", "Input tokens"),
            Column("output_tokens", "Output tokens"),
            Column("cost", "Cost", "money"),
            Column("approved_pairs", "Approved pairs"),
            Column("tokens_per_pair", "Tokens per approved pair", "number"),
            Column("cost_per_pair", "Cost per approved pair", "money"),
        ),
        chart=Chart("bar", "model", ("cost_per_pair",)),
        compute=_everyone(selectors.cost_per_approved_pair),
    ),
    Figure(
        slug="checks",
        title="Check failure rates",
        about="Per automatic check: the cases (planned in the date range) with a text the check reads, and the "
        "share whose current versions it flags.",
        columns=(
            Column("check", "Check", "text"),
            Column("title", "What it looks for", "text"),
            Column("severity", "Severity", "text"),
            Column("checked", "Cases checked"),
            Column("flagged", "Flagged"),
            Column("rate", "Failure rate", "share"),
        ),
        chart=Chart("bar", "check", ("rate",), horizontal=True, percent=True),
        compute=_everyone(selectors.check_failure_rates),
    ),
)
FIGURES_BY_SLUG = {figure.slug: figure for figure in FIGURES}


def sees_all_figures(user: User | AnonymousUser) -> bool:
    return user.has_perm(SEES_ALL_FIGURES)


def figures_for(user: User | AnonymousUser) -> list[Figure]:
    """Admins see every figure; a reviewer sees the figures made for clinicians."""
    if sees_all_figures(user):
        return list(FIGURES)
    if user.has_perm(REVIEWS):
        return [figure for figure in FIGURES if figure.for_clinicians]
    return []


def figure_rows(figure: Figure, *, filters: DashboardFilters, viewer: User) -> list[Row]:
    """The figure's rows as `viewer` may see them: a clinician's throughput is their own."""
    return figure.compute(filters, None if sees_all_figures(viewer) else viewer)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, Decimal | int | float) else None


def chart_data(figure: Figure, rows: Sequence[Row]) -> dict[str, Any]:
    """What static/js/dashboards.js draws with Chart.js."""
    chart = figure.chart
    return {
        "type": chart.type,
        "horizontal": chart.horizontal,
        "percent": chart.percent,
        "stacked": chart.stacked,
        "labels": [str(row.get(chart.label, "")) for row in rows],
        "datasets": [
            {"label": figure.column_by_key[key].label, "data": [_number(row.get(key)) for row in rows]}
            for key in chart.series
        ],
    }


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 6)
    return csv_safe(value)


def figure_csv(figure: Figure, rows: Sequence[Row]) -> str:
    """The figure's table as CSV: one header row of column labels, raw values (shares as 0-1)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([column.label for column in figure.columns])
    for row in rows:
        writer.writerow([_csv_value(row.get(column.key)) for column in figure.columns])
    return out.getvalue()
