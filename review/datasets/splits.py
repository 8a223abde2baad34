"""Train/validation/test splits that are deterministic (same seed, same data, same
split) and computed while streaming: the exporter walks cases ordered by code, so a
split needs only the per-code counts (and the few links that must stay together),
never the whole dataset.

- `grouped`: every case of a group lands in one split, so no group leaks between train
  and test. The group is the export's level (`GROUP_LEVELS`): the exact code, the ICD-10
  category (first three characters: E11.9 and E11.65 are one disease; the default),
  the block (E08-E13) or the chapter. Extra links (`kept_together`, e.g. an in-context
  example and the cases generated from it) merge groups by union-find. With
  `stratify_by_chapter`, the groups of each chapter are spread over the splits in the
  ratios, so every split sees the chapter mix of the whole.
- `stratified`: each code's cases are spread over the splits in the ratios, so every
  split sees the same code distribution (groups do span splits: the card says how many).
- `none`: one `train` split, as Hugging Face names a dataset without splits.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from generation.errors import DomainError

SPLITS: tuple[str, str, str] = ("train", "validation", "test")
SPLIT_MODES = ("none", "grouped", "stratified")
GROUP_LEVELS = ("code", "category", "block", "chapter")
DEFAULT_GROUP_LEVEL = "category"
DEFAULT_RATIOS = (0.8, 0.1, 0.1)


class SplitOptionError(DomainError):
    """Ratios or mode that cannot make a split."""


@dataclass(frozen=True)
class SplitPlan:
    mode: str = "none"
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = 0
    group_level: str = DEFAULT_GROUP_LEVEL
    stratify_by_chapter: bool = False

    def __post_init__(self) -> None:
        if self.mode not in SPLIT_MODES:
            raise SplitOptionError(f"unknown split mode {self.mode!r}; use one of {', '.join(SPLIT_MODES)}")
        if len(self.ratios) != 3 or any(ratio < 0 for ratio in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise SplitOptionError("split ratios must be three numbers >= 0 that add up to 1, e.g. 0.8,0.1,0.1")
        if self.group_level not in GROUP_LEVELS:
            raise SplitOptionError(f"unknown grouping level {self.group_level!r}; use one of {', '.join(GROUP_LEVELS)}")
        if self.stratify_by_chapter and self.mode != "grouped":
            raise SplitOptionError("stratifying by chapter applies to grouped splits only (--split grouped)")
        if self.stratify_by_chapter and self.group_level == "chapter":
            raise SplitOptionError("a chapter cannot be spread over splits when the chapter is the group")

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


def group_key(level: str, *, code: str, block: str, chapter: str) -> str:
    """The group a code belongs to at `level` (the one rule; the card checks with it too)."""
    if level == "code":
        return code
    if level == "category":
        return code[:3]
    if level == "block":
        return block or code[:3]
    if level == "chapter":
        return chapter
    raise SplitOptionError(f"unknown grouping level {level!r}; use one of {', '.join(GROUP_LEVELS)}")


@dataclass(frozen=True)
class CodeCount:
    """One exported code and its number of pairs."""

    code: str
    block: str
    chapter: str
    count: int


class UnionFind:
    def __init__(self) -> None:
        self._parent: dict[Hashable, Hashable] = {}

    def find(self, item: Hashable) -> Hashable:
        self._parent.setdefault(item, item)
        root = item
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[item] != root:  # path compression
            self._parent[item], item = root, self._parent[item]
        return root

    def union(self, first: Hashable, second: Hashable) -> None:
        first_root, second_root = self.find(first), self.find(second)
        if first_root != second_root:
            # The smaller key becomes the root: the same links give the same roots in any order.
            low, high = sorted((first_root, second_root), key=repr)
            self._parent[high] = low


@dataclass(frozen=True)
class GroupMerge:
    """What the kept-together links did to a grouped split's groups."""

    groups: int
    components: int
    largest_pairs: int
    total_pairs: int

    @property
    def largest_share(self) -> float:
        return self.largest_pairs / self.total_pairs if self.total_pairs else 0.0


@dataclass
class _Component:
    groups: list[str]
    count: int
    chapters: Counter[str]

    @property
    def stratum(self) -> str:
        """The chapter that holds most of the component's pairs (the smallest on a tie)."""
        most = max(self.chapters.values())
        return min(chapter for chapter, count in self.chapters.items() if count == most)


class SplitAssigner:
    """Answers `split_for(code, position)` for the position-th case (0-based) of a code.

    `kept_together`: sets (or pairs) of case ids that must land in one split, whatever
    their codes; their groups are merged by union-find, transitively. It is the generic
    hook for any link between cases: the export passes the in-context example links
    (an example and every case generated from it) and can pass near-duplicate clusters
    the same way. `case_codes` gives the code of each case id named there; a case it does
    not list is not exported and only links the others. Grouped mode only: the other
    modes put no group in one split by design.
    """

    def __init__(
        self,
        *,
        plan: SplitPlan,
        codes: Sequence[CodeCount],
        kept_together: Iterable[Collection[int]] = (),
        case_codes: Mapping[int, str] | None = None,
    ) -> None:
        self.plan = plan
        self.codes = {code.code: code for code in codes}
        self.code_counts = {code.code: code.count for code in codes}
        self._split_of_code: dict[str, str] = {}
        self.merge: GroupMerge | None = None
        if plan.mode == "grouped":
            self._split_of_code = self._grouped_assignment(kept_together, case_codes or {})
        self._ranks: tuple[str, list[int]] | None = None

    def group_of(self, code: str) -> str:
        facts = self.codes[code]
        return group_key(self.plan.group_level, code=facts.code, block=facts.block, chapter=facts.chapter)

    def _components(self, kept_together: Iterable[Collection[int]], case_codes: Mapping[int, str]) -> list[_Component]:
        links = UnionFind()
        for code in self.codes:
            links.find(("group", self.group_of(code)))
        for members in kept_together:
            ids = sorted(members)
            for case_id in ids:
                links.union(("case", ids[0]), ("case", case_id))
                case_code = case_codes.get(case_id)
                if case_code is not None and case_code in self.codes:
                    links.union(("case", case_id), ("group", self.group_of(case_code)))
        by_root: dict[Hashable, _Component] = {}
        for code, facts in sorted(self.codes.items()):
            group = self.group_of(code)
            component = by_root.setdefault(links.find(("group", group)), _Component([], 0, Counter()))
            if group not in component.groups:
                component.groups.append(group)
            component.count += facts.count
            component.chapters[facts.chapter] += facts.count
        return sorted(by_root.values(), key=lambda component: min(component.groups))

    def _grouped_assignment(
        self, kept_together: Iterable[Collection[int]], case_codes: Mapping[int, str]
    ) -> dict[str, str]:
        components = self._components(kept_together, case_codes)
        self.merge = GroupMerge(
            groups=len({self.group_of(code) for code in self.codes}),
            components=len(components),
            largest_pairs=max((component.count for component in components), default=0),
            total_pairs=sum(component.count for component in components),
        )
        random.Random(f"grouped:{self.plan.seed}").shuffle(components)  # noqa: S311 - a reproducible split, not a secret
        fill = self._stratified_fill if self.plan.stratify_by_chapter else self._fill
        split_of_group = fill(components)
        return {code: split_of_group[self.group_of(code)] for code in self.codes}

    def _targets(self, total: int) -> dict[str, float]:
        return {name: ratio * total for name, ratio in zip(SPLITS, self.plan.ratios, strict=True)}

    def _fill(self, components: list[_Component]) -> dict[str, str]:
        # First the smallest components seed the smaller splits (one each, so a split with
        # a ratio gets pairs even from few groups; never the largest component, which may
        # hold most of the data once links merged groups), then the rest, largest first,
        # each to the split furthest below its target pair count: ratios hold by pairs.
        targets = self._targets(sum(component.count for component in components))
        wanted = [name for name in sorted(SPLITS, key=lambda name: targets[name]) if targets[name] > 0]
        by_size = sorted(components, key=lambda component: component.count)  # stable: seeded order on ties
        seeds = by_size[: min(len(wanted) - 1, len(components) - 1)] if wanted else []
        filled = dict.fromkeys(SPLITS, 0)
        assignment: dict[str, str] = {}

        def place(component: _Component, split: str) -> None:
            filled[split] += component.count
            assignment.update(dict.fromkeys(component.groups, split))

        for component, split in zip(seeds, wanted, strict=False):
            place(component, split)
        for component in reversed(by_size[len(seeds) :]):
            place(component, max(SPLITS, key=lambda name: (targets[name] - filled[name], -SPLITS.index(name))))
        return assignment

    def _stratified_fill(self, components: list[_Component]) -> dict[str, str]:
        # Within each chapter, largest components first, each to the split furthest below
        # the chapter's target; ties go to the split furthest below the overall target.
        overall = self._targets(sum(component.count for component in components))
        overall_filled = dict.fromkeys(SPLITS, 0)
        strata: dict[str, list[_Component]] = defaultdict(list)
        for component in components:
            strata[component.stratum].append(component)
        assignment: dict[str, str] = {}
        for chapter in sorted(strata):
            members = sorted(strata[chapter], key=lambda component: -component.count)  # stable: seeded order on ties
            targets = self._targets(sum(component.count for component in members))
            filled = dict.fromkeys(SPLITS, 0)
            for component in members:
                split = max(
                    SPLITS,
                    key=lambda name: (
                        targets[name] - filled[name],
                        overall[name] - overall_filled[name],
                        -SPLITS.index(name),
                    ),
                )
                filled[split] += component.count
                overall_filled[split] += component.count
                assignment.update(dict.fromkeys(component.groups, split))
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
