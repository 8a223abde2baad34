"""Which codes a batch takes, and how many new pairs each gets.

The codes: an explicit list, the top N by imported frequency (optionally within some
chapters and blocks), stratified across chapters, or every billable code of the filters.
The pairs: K per code, or -- topping up -- what each code still lacks to reach K approved
pairs, capped per code and in total. The arithmetic (chapter quotas, top-up shares) is
pure and lives in functions of plain numbers, so it can be checked by hand.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

from django.db.models import Count, QuerySet, Sum

from generation.code_search import code_pair_counts
from generation.errors import DomainError
from generation.models import IcdCode, code_compact, looks_like_icd9
from generation.services.catalogue import codes_by_compact

K = TypeVar("K", bound=Hashable)


class BatchPlanError(DomainError):
    """The batch request cannot be planned; nothing was created."""


@dataclass(frozen=True)
class CodeSelection:
    """The codes an admin asks for (the batch form's and `manage.py generate`'s options)."""

    codes: Sequence[str] = ()
    top: int | None = None
    chapters: Sequence[str] = ()
    blocks: Sequence[str] = ()
    # Spread the top N over the chapters in proportion to their frequency, at least this many
    # codes per chapter; None keeps the plain top N.
    minimum_per_chapter: int | None = None


def split_list(raw: str) -> list[str]:
    """'9, 10 ,,' -> ['9', '10']: a comma-separated option as a list."""
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Codes --------------------------------------------------------------------------


def codes_select(selection: CodeSelection) -> list[IcdCode]:
    """The codes of a selection, most frequent first for a top N; raises BatchPlanError
    with what to change when the selection is empty or names unknown codes or filters."""
    if selection.codes:
        if selection.top or selection.chapters or selection.blocks or selection.minimum_per_chapter is not None:
            raise BatchPlanError("Give either a list of codes or a top N / chapter / block filter, not both.")
        return _codes_listed(list(selection.codes))
    filtered = _filtered(chapters=selection.chapters, blocks=selection.blocks)
    if selection.top is None:
        if selection.minimum_per_chapter is not None:
            raise BatchPlanError("Stratifying by chapter needs a top N: how many codes in total.")
        if not (selection.chapters or selection.blocks):
            raise BatchPlanError("Choose the codes: a list of codes, a top-N by frequency, or a chapter or block.")
        return list(filtered.order_by("code"))
    if selection.top < 1:
        raise BatchPlanError("Top N must be at least 1.")
    ranked = _ranked(filtered)
    if not ranked.exists():
        raise BatchPlanError(
            "No code frequencies have been imported for these codes, so there is no top-N: import them "
            "(`manage.py import_code_frequencies FILE`) or list the codes."
        )
    if selection.minimum_per_chapter is None:
        return list(ranked[: selection.top])
    return _codes_stratified(ranked, total=selection.top, minimum=selection.minimum_per_chapter)


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


def _filtered(*, chapters: Sequence[str], blocks: Sequence[str]) -> QuerySet[IcdCode]:
    """The billable codes of the chapters and blocks (all of them without a filter);
    a chapter or block that holds no billable code is refused by name."""
    queryset = IcdCode.objects.filter(is_billable=True)
    if chapters:
        wanted = [chapter.strip() for chapter in chapters]
        queryset = queryset.filter(chapter__in=wanted)
        _refuse_unknown("chapter", wanted, set(queryset.values_list("chapter", flat=True).distinct()), "1-22")
    if blocks:
        wanted = [block.strip().upper() for block in blocks]
        queryset = queryset.filter(block__in=wanted)
        _refuse_unknown("block", wanted, set(queryset.values_list("block", flat=True).distinct()), "e.g. E08-E13")
    return queryset


def _refuse_unknown(what: str, wanted: list[str], found: set[str], example: str) -> None:
    missing = [name for name in wanted if name not in found]
    if missing:
        raise BatchPlanError(f"No billable ICD-10-CM codes in {what}(s) {', '.join(missing)} ({example}).")


def _ranked(codes: QuerySet[IcdCode]) -> QuerySet[IcdCode]:
    """The codes that have an imported frequency, most frequent first (ties by code)."""
    return codes.filter(frequency__isnull=False).order_by("-frequency", "code")


def _codes_stratified(ranked: QuerySet[IcdCode], *, total: int, minimum: int) -> list[IcdCode]:
    per_chapter = ranked.values("chapter").annotate(codes=Count("id"), weight=Sum("frequency")).order_by("chapter")
    quotas = chapter_quotas(
        total=total,
        minimum=minimum,
        weights={row["chapter"]: row["weight"] or 0 for row in per_chapter},
        available={row["chapter"]: row["codes"] for row in per_chapter},
    )
    chosen = [code for chapter, quota in quotas.items() if quota for code in ranked.filter(chapter=chapter)[:quota]]
    return sorted(chosen, key=lambda code: (-(code.frequency or 0), code.code))


def chapter_quotas(
    *, total: int, minimum: int, weights: Mapping[str, int], available: Mapping[str, int]
) -> dict[str, int]:
    """How many of `total` codes each chapter gets: first `minimum` each (or all it has),
    then the rest in proportion to the chapters' frequencies (`weights`), never more than
    a chapter has. Whole numbers by the largest remainder. Fewer than `total` only when the
    chapters hold fewer codes."""
    if minimum < 0:
        raise BatchPlanError("The minimum per chapter cannot be negative.")
    floors = {chapter: min(minimum, available[chapter]) for chapter in available}
    if sum(floors.values()) > total:
        raise BatchPlanError(
            f"A minimum of {minimum} code(s) in each of {len(floors)} chapter(s) needs at least "
            f"{sum(floors.values())} codes; the top N is {total}. Raise N or lower the minimum."
        )
    room = {chapter: available[chapter] - floors[chapter] for chapter in available}
    extra = shares_capped(total=total - sum(floors.values()), weights=weights, caps=room)
    return {chapter: floors[chapter] + extra[chapter] for chapter in available}


def shares_capped(*, total: int, weights: Mapping[K, int], caps: Mapping[K, int]) -> dict[K, int]:
    """`total` split in proportion to `weights`, no key above its cap: a key whose share
    passes its cap gets the cap and the rest is split again among the others. Whole numbers
    by the largest remainder (ties to the larger weight, then the key that comes first)."""
    given = dict.fromkeys(caps, 0)
    open_keys = [key for key in caps if caps[key] > 0]
    left = min(total, sum(caps.values()))
    while left and open_keys:
        # Keys whose weights are all 0 (codes imported with a count of 0) share equally.
        weight_of = {key: weights.get(key, 0) for key in open_keys}
        if not any(weight_of.values()):
            weight_of = dict.fromkeys(open_keys, 1)
        ideal = {key: Fraction(left * weight_of[key], sum(weight_of.values())) for key in open_keys}
        full = [key for key in open_keys if ideal[key] >= caps[key]]
        if full:
            for key in full:
                given[key] = caps[key]
                left -= caps[key]
            open_keys = [key for key in open_keys if key not in full]
            continue
        whole = {key: int(ideal[key]) for key in open_keys}
        by_remainder = sorted(open_keys, key=lambda key: (-(ideal[key] - whole[key]), -weight_of[key]))
        for key in by_remainder[: left - sum(whole.values())]:
            whole[key] += 1
        given.update(whole)
        break
    return given


# --- Pairs per code ------------------------------------------------------------------


@dataclass(frozen=True)
class TopUp:
    """Bring every chosen code to `target` approved pairs: plan only what is missing."""

    target: int
    per_code_cap: int | None = None  # at most this many new pairs for one code
    total_cap: int | None = None  # at most this many new pairs in all


@dataclass(frozen=True)
class PlannedCode:
    """A chosen code, the pairs it has over every batch, and the new pairs it gets."""

    code: IcdCode
    approved: int
    underway: int
    new_pairs: int


def codes_plan(*, selection: CodeSelection, pairs_per_code: int, topup: TopUp | None = None) -> list[PlannedCode]:
    """The chosen codes with their new pairs: `pairs_per_code` each, or with a top-up only
    what each lacks to reach the target (target - approved - underway, never below 0),
    capped per code and in total. What the batch form previews is what a batch plans."""
    codes = codes_select(selection)
    counts = code_pair_counts(code_ids=[code.pk for code in codes])
    if topup is None:
        new_pairs = {code.pk: pairs_per_code for code in codes}
    else:
        missing = {
            code.pk: max(0, topup.target - counts[code.pk].approved - counts[code.pk].underway) for code in codes
        }
        new_pairs = missing_pairs_allocate(missing=missing, per_code_cap=topup.per_code_cap, total_cap=topup.total_cap)
    return [
        PlannedCode(code, counts[code.pk].approved, counts[code.pk].underway, new_pairs.get(code.pk, 0))
        for code in codes
    ]


def missing_pairs_allocate(
    *, missing: Mapping[K, int], per_code_cap: int | None, total_cap: int | None
) -> dict[K, int]:
    """The new pairs of each code given what it lacks: never more than `per_code_cap` for
    one code; when the total passes `total_cap`, pairs are handed out one per code per
    round, in the codes' order (most frequent first for a top N), so every short code gets
    some before any gets many. Codes that get nothing are left out."""
    wanted = {key: min(count, per_code_cap) if per_code_cap is not None else count for key, count in missing.items()}
    wanted = {key: count for key, count in wanted.items() if count > 0}
    if total_cap is None or sum(wanted.values()) <= total_cap:
        return wanted
    given = dict.fromkeys(wanted, 0)
    left = total_cap
    while left:
        for key in wanted:
            if left and given[key] < wanted[key]:
                given[key] += 1
                left -= 1
    return {key: count for key, count in given.items() if count}
