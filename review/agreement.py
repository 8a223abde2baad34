"""Inter-rater agreement: Cohen's kappa (two raters), Fleiss' kappa and Krippendorff's
alpha (any number of raters, missing ratings allowed; ordinal for survey scores).

Every statistic is computed from a RatingTally: counts of ratings, not the ratings
themselves, so the database can count the review decisions (review.selectors.verdict_tallies)
and a page never loads them; `tally` counts a ratings dict the same way. Cohen's kappa and
Fleiss' kappa are the textbook formulas on those counts; Krippendorff's alpha comes from the
`krippendorff` package (maintained, numpy-only), fed the same counts.

Every statistic comes with the number of items it was computed on; when too few items
overlap the value is None and `note` says why, instead of showing a misleading number.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal, cast

import krippendorff
import numpy as np

# Below this many items rated by every rater involved, a coefficient says little.
MIN_OVERLAP = 5

SAME_LABEL = "Every rating used the same label; the coefficient is undefined."

# ratings[rater][item] = label
Ratings = Mapping[Any, Mapping[Any, Any]]
# The labels one item received, as ((label, how many raters gave it), ...) sorted by label.
LabelCounts = tuple[tuple[Hashable, int], ...]
# How many items two raters both rated, per pair of labels: {(first's label, second's label): items}.
PairTable = Mapping[tuple[Hashable, Hashable], int]


@dataclass(frozen=True)
class Agreement:
    name: str
    value: float | None
    items: int
    raters: int
    note: str = ""

    @property
    def is_reliable(self) -> bool:
        return self.value is not None and not self.note


@dataclass(frozen=True)
class RatingTally:
    """What the statistics need of a set of ratings (one rating per rater and item)."""

    raters: tuple[Hashable, ...]  # every rater, sorted by str
    ratings: int
    # Per pair of raters (ordered as in `raters`) who rated items in common: their table.
    pairs: Mapping[tuple[Hashable, Hashable], PairTable]
    # The items rated by two raters or more, counted by the labels they received.
    items_by_labels: Mapping[LabelCounts, int]


def label_counts(labels: Iterable[Hashable]) -> LabelCounts:
    return tuple(sorted(Counter(labels).items(), key=lambda pair: str(pair[0])))


def tally(ratings: Ratings) -> RatingTally:
    """Count a ratings dict (ratings[rater][item] = label)."""
    raters = tuple(sorted(ratings, key=str))
    pairs = {}
    for first, second in combinations(raters, 2):
        shared = set(ratings[first]) & set(ratings[second])
        if shared:
            pairs[first, second] = Counter((ratings[first][item], ratings[second][item]) for item in shared)
    labels: dict[Hashable, list[Hashable]] = {}
    for per_item in ratings.values():
        for item, label in per_item.items():
            labels.setdefault(item, []).append(label)
    items_by_labels = Counter(label_counts(values) for values in labels.values() if len(values) >= 2)
    return RatingTally(raters, sum(len(per_item) for per_item in ratings.values()), pairs, items_by_labels)


def combined(tallies: Iterable[RatingTally]) -> RatingTally:
    """One tally of several sets of ratings about different items (e.g. every review stage)."""
    tallies = list(tallies)
    pairs: dict[tuple[Hashable, Hashable], Counter[tuple[Hashable, Hashable]]] = {}
    items_by_labels: Counter[LabelCounts] = Counter()
    for part in tallies:
        for pair, table in part.pairs.items():
            pairs.setdefault(pair, Counter()).update(table)
        items_by_labels.update(part.items_by_labels)
    raters = tuple(sorted({rater for part in tallies for rater in part.raters}, key=str))
    return RatingTally(raters, sum(part.ratings for part in tallies), pairs, items_by_labels)


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def _small_note(items: int) -> str:
    return (
        f"Only {items} overlapping item(s); at least {MIN_OVERLAP} are needed for a meaningful value."
        if items < MIN_OVERLAP
        else ""
    )


def cohen_kappa(table: PairTable) -> Agreement:
    """Cohen's kappa of two raters from the items both rated: (observed - chance) / (1 - chance)."""
    items = sum(table.values())
    if items == 0:
        return Agreement("Cohen's kappa", None, 0, 2, "No item was rated by enough raters.")
    first: Counter[Hashable] = Counter()
    second: Counter[Hashable] = Counter()
    for (label_first, label_second), count in table.items():
        first[label_first] += count
        second[label_second] += count
    if len(set(first) | set(second)) == 1:
        # Both always used the same single label: chance agreement is 1, kappa is undefined.
        return Agreement("Cohen's kappa", None, items, 2, SAME_LABEL)
    observed = sum(count for (label_first, label_second), count in table.items() if label_first == label_second)
    chance = sum(first[label] * second[label] for label in first) / items**2
    kappa = (observed / items - chance) / (1 - chance)
    return Agreement("Cohen's kappa", _finite(kappa), items, 2, _small_note(items))


def pairwise_cohen(ratings: RatingTally) -> list[tuple[Hashable, Hashable, Agreement]]:
    """Cohen's kappa of every pair of raters, in the order of their names."""
    return [
        (first, second, cohen_kappa(ratings.pairs.get((first, second), {})))
        for first, second in combinations(ratings.raters, 2)
    ]


def fleiss_kappa(ratings: RatingTally) -> Agreement:
    """Fleiss' kappa. It needs the same number of ratings on every item, so it uses the
    items that have the most common count (at least two; the larger count on a tie)."""
    by_count: Counter[int] = Counter()
    for labels, items in ratings.items_by_labels.items():
        by_count[sum(count for _, count in labels)] += items
    if not by_count:
        return Agreement("Fleiss' kappa", None, 0, len(ratings.raters), "No item was rated by two or more raters.")
    per_item = max(by_count, key=lambda count: (by_count[count], count))
    used = {labels: items for labels, items in ratings.items_by_labels.items() if sum(c for _, c in labels) == per_item}
    n_items = sum(used.values())
    per_category: Counter[Hashable] = Counter()
    agreeing_pairs = 0.0
    for labels, items in used.items():
        for label, count in labels:
            per_category[label] += count * items
        agreeing_pairs += items * (sum(count * count for _, count in labels) - per_item) / (per_item * (per_item - 1))
    p_bar = agreeing_pairs / n_items
    p_expected = sum((total / (n_items * per_item)) ** 2 for total in per_category.values())
    note = _small_note(n_items)
    if n_items < sum(by_count.values()):
        note = (note + " " if note else "") + f"Computed on the {n_items} items with exactly {per_item} ratings."
    if math.isclose(p_expected, 1.0):
        return Agreement("Fleiss' kappa", None, n_items, per_item, SAME_LABEL)
    return Agreement("Fleiss' kappa", _finite((p_bar - p_expected) / (1 - p_expected)), n_items, per_item, note)


def krippendorff_alpha(
    ratings: RatingTally, *, level: Literal["nominal", "ordinal"] = "nominal", categories: Sequence[Hashable] = ()
) -> Agreement:
    """Krippendorff's alpha over every item with at least two ratings (missing ratings allowed).

    `level` is "nominal" or "ordinal"; ordinal labels must be numbers or be listed in order in `categories`.
    """
    name = f"Krippendorff's alpha ({level})"
    items = sum(ratings.items_by_labels.values())
    raters = len(ratings.raters)
    if not items or raters < 2:
        return Agreement(name, None, items, raters, "No item was rated by two or more raters.")
    used = {label for labels in ratings.items_by_labels for label, _ in labels}
    if len(used) < 2:
        return Agreement(name, None, items, raters, "Every rating used the same value; alpha is undefined.")
    if categories:
        order = [label for label in categories if label in used]
    else:
        order = sorted(used, key=lambda label: float(cast(Any, label))) if level == "ordinal" else sorted(used, key=str)
    column = {label: index for index, label in enumerate(order)}
    # One row per distinct combination of labels, repeated for the items that had it.
    rows = np.zeros((len(ratings.items_by_labels), len(order)))
    for row, labels in enumerate(ratings.items_by_labels):
        for label, count in labels:
            rows[row, column[label]] = count
    value_counts = np.repeat(rows, list(ratings.items_by_labels.values()), axis=0)
    value = krippendorff.alpha(value_counts=value_counts, level_of_measurement=level)
    return Agreement(name, _finite(value), items, raters, _small_note(items))
