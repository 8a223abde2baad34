"""Train/validation/test splits that are deterministic (same seed, same data, same
split) and computed while streaming: the exporter walks cases ordered by code, so a
split needs only the per-code counts, never the whole dataset.

- `grouped`: every case of a code lands in one split, so no code leaks between train
  and test (the split to use when a model must generalise to unseen codes).
- `stratified`: each code's cases are spread over the splits in the ratios, so every
  split sees the same code distribution.
- `none`: one `train` split, as Hugging Face names a dataset without splits.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from generation.errors import DomainError

SPLITS: tuple[str, str, str] = ("train", "validation", "test")
SPLIT_MODES = ("none", "grouped", "stratified")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)


class SplitOptionError(DomainError):
    """Ratios or mode that cannot make a split."""


@dataclass(frozen=True)
class SplitPlan:
    mode: str = "none"
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in SPLIT_MODES:
            raise SplitOptionError(f"unknown split mode {self.mode!r}; use one of {', '.join(SPLIT_MODES)}")
        if len(self.ratios) != 3 or any(ratio < 0 for ratio in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise SplitOptionError("split ratios must be three numbers >= 0 that add up to 1, e.g. 0.8,0.1,0.1")

    @property
    def split_names(self) -> tuple[str, ...]:
        return ("train",) if self.mode == "none" else SPLITS


def ratios_parse(raw: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' (or '80/10/10') -> (0.8, 0.1, 0.1)."""
    parts = [part for part in raw.replace("/", ",").split(",") if part.strip()]
    try:
        numbers = [float(part) for part in parts]
    except ValueError as error:
        raise SplitOptionError(f"split ratios {raw!r} are not numbers") from error
    if len(numbers) != 3 or sum(numbers) <= 0:
        raise SplitOptionError(f"expected three split ratios (train,validation,test), got {raw!r}")
    total = sum(numbers)
    train, validation, test = (number / total for number in numbers)
    return (train, validation, test)


class SplitAssigner:
    """Answers `split_for(code, position)` for the position-th case (0-based) of a code."""

    def __init__(self, *, plan: SplitPlan, code_counts: Mapping[str, int]) -> None:
        self.plan = plan
        self.code_counts = dict(code_counts)
        self._split_of_code = self._grouped_assignment() if plan.mode == "grouped" else {}
        self._ranks: tuple[str, list[int]] | None = None

    def _grouped_assignment(self) -> dict[str, str]:
        # Codes in a seeded random order: first one code for each split that should have
        # any (smallest split first), then each code to the split furthest below its
        # target pair count, so the ratios hold by pairs, not by codes.
        codes = sorted(self.code_counts)
        random.Random(f"grouped:{self.plan.seed}").shuffle(codes)  # noqa: S311 - a reproducible split, not a secret
        total = sum(self.code_counts.values())
        wanted = [
            name for name, ratio in sorted(zip(SPLITS, self.plan.ratios, strict=True), key=lambda s: s[1]) if ratio > 0
        ]
        targets = {name: ratio * total for name, ratio in zip(SPLITS, self.plan.ratios, strict=True)}
        filled = dict.fromkeys(SPLITS, 0)
        assignment: dict[str, str] = {}
        for index, code in enumerate(codes):
            if index < len(wanted):
                split = wanted[index]
            else:
                split = max(SPLITS, key=lambda name: (targets[name] - filled[name], -SPLITS.index(name)))
            assignment[code] = split
            filled[split] += self.code_counts[code]
        return assignment

    def _rank_in_code(self, code: str, position: int) -> int:
        # A seeded shuffle of the code's positions, kept only while that code is streamed.
        if self._ranks is None or self._ranks[0] != code:
            order = list(range(self.code_counts.get(code, position + 1)))
            random.Random(f"stratified:{self.plan.seed}:{code}").shuffle(order)  # noqa: S311
            self._ranks = (code, order)
        order = self._ranks[1]
        return order[position] if position < len(order) else position

    def split_for(self, code: str, position: int) -> str:
        if self.plan.mode == "none":
            return "train"
        if self.plan.mode == "grouped":
            return self._split_of_code[code]
        count = self.code_counts.get(code, position + 1)
        train, validation, _test = self.plan.ratios
        rank = self._rank_in_code(code, position)
        if rank < round(count * train):
            return "train"
        if rank < round(count * (train + validation)):
            return "validation"
        return "test"
