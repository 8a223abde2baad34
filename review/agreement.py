"""Inter-rater agreement: Cohen's kappa (two raters), Fleiss' kappa and Krippendorff's
alpha (any number of raters, missing ratings allowed; ordinal for survey scores).

Cohen's kappa comes from scikit-learn (already a dependency) and Krippendorff's alpha
from the `krippendorff` package (maintained, numpy-only). Fleiss' kappa is the short
textbook formula: statsmodels has it, but would add pandas and patsy for one function.

Every statistic comes with the number of items it was computed on; when too few items
overlap the value is None and `note` says why, instead of showing a misleading number.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

# Below this many items rated by every rater involved, a coefficient says little.
MIN_OVERLAP = 5

SAME_LABEL = "Every rating used the same label; the coefficient is undefined."

# ratings[rater][item] = label
Ratings = Mapping[Any, Mapping[Any, Any]]


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


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def _too_few(name: str, items: int, raters: int) -> Agreement | None:
    if items == 0:
        return Agreement(name, None, 0, raters, "No item was rated by enough raters.")
    return None


def _small_note(items: int) -> str:
    return (
        f"Only {items} overlapping item(s); at least {MIN_OVERLAP} are needed for a meaningful value."
        if items < MIN_OVERLAP
        else ""
    )


def cohen_kappa(*, first: Mapping[Any, Any], second: Mapping[Any, Any]) -> Agreement:
    """Cohen's kappa on the items both raters rated."""
    shared = sorted(set(first) & set(second), key=str)
    if empty := _too_few("Cohen's kappa", len(shared), 2):
        return empty
    a = [str(first[item]) for item in shared]
    b = [str(second[item]) for item in shared]
    if len(set(a) | set(b)) == 1:
        # Both always used the same single label: chance agreement is 1, kappa is undefined.
        return Agreement("Cohen's kappa", None, len(shared), 2, SAME_LABEL)
    return Agreement("Cohen's kappa", _finite(cohen_kappa_score(a, b)), len(shared), 2, _small_note(len(shared)))


def pairwise_cohen(ratings: Ratings) -> list[tuple[Hashable, Hashable, Agreement]]:
    return [
        (rater_a, rater_b, cohen_kappa(first=ratings[rater_a], second=ratings[rater_b]))
        for rater_a, rater_b in combinations(sorted(ratings, key=str), 2)
    ]


def _items_by_rating_count(ratings: Ratings) -> dict[Hashable, list[Hashable]]:
    labels: dict[Hashable, list[Hashable]] = {}
    for per_item in ratings.values():
        for item, label in per_item.items():
            labels.setdefault(item, []).append(label)
    return labels


def fleiss_kappa(ratings: Ratings) -> Agreement:
    """Fleiss' kappa. It needs the same number of ratings on every item, so it uses the
    items that have the most common count (at least two)."""
    labels = {item: values for item, values in _items_by_rating_count(ratings).items() if len(values) >= 2}
    if not labels:
        return Agreement("Fleiss' kappa", None, 0, len(ratings), "No item was rated by two or more raters.")
    per_item, _ = Counter(len(values) for values in labels.values()).most_common(1)[0]
    used = [values for values in labels.values() if len(values) == per_item]
    categories = sorted({str(label) for values in used for label in values})
    counts = np.array([[sum(1 for label in values if str(label) == c) for c in categories] for values in used], float)
    n_items = counts.shape[0]
    p_category = counts.sum(axis=0) / (n_items * per_item)
    p_item = (np.square(counts).sum(axis=1) - per_item) / (per_item * (per_item - 1))
    p_bar, p_expected = p_item.mean(), np.square(p_category).sum()
    note = _small_note(n_items)
    if len(used) < len(labels):
        note = (note + " " if note else "") + f"Computed on the {n_items} items with exactly {per_item} ratings."
    if math.isclose(p_expected, 1.0):
        return Agreement("Fleiss' kappa", None, n_items, per_item, SAME_LABEL)
    return Agreement("Fleiss' kappa", _finite((p_bar - p_expected) / (1 - p_expected)), n_items, per_item, note)


def krippendorff_alpha(
    ratings: Ratings, *, level: Literal["nominal", "ordinal"] = "nominal", categories: Sequence[Hashable] = ()
) -> Agreement:
    """Krippendorff's alpha over every item with at least two ratings (missing ratings allowed).

    `level` is "nominal" or "ordinal"; ordinal labels must be numbers or be listed in order in `categories`.
    """
    name = f"Krippendorff's alpha ({level})"
    labels = _items_by_rating_count(ratings)
    items = sorted((item for item, values in labels.items() if len(values) >= 2), key=str)
    raters = sorted(ratings, key=str)
    if not items or len(raters) < 2:
        return Agreement(name, None, len(items), len(raters), "No item was rated by two or more raters.")
    order = list(categories) or sorted({label for item in items for label in labels[item]}, key=str)
    code = {label: index for index, label in enumerate(order)}
    data = np.full((len(raters), len(items)), np.nan)
    for row, rater in enumerate(raters):
        for column, item in enumerate(items):
            if item in ratings[rater]:
                label = ratings[rater][item]
                data[row, column] = float(label) if level == "ordinal" and not categories else code[label]
    if len({value for value in data.flatten() if not math.isnan(value)}) < 2:
        return Agreement(name, None, len(items), len(raters), "Every rating used the same value; alpha is undefined.")
    value = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    return Agreement(name, _finite(value), len(items), len(raters), _small_note(len(items)))
