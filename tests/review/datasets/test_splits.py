from __future__ import annotations

from collections import Counter

import pytest

from review.datasets.splits import CodeCount, SplitAssigner, SplitOptionError, SplitPlan, ratios_parse


def _codes(counts: dict[str, int], chapter: str = "1") -> list[CodeCount]:
    return [CodeCount(code=code, block="", chapter=chapter, count=count) for code, count in counts.items()]


def _grouped(counts: dict[str, int], seed: int = 0, ratios=(0.8, 0.1, 0.1), level: str = "code") -> dict[str, str]:
    plan = SplitPlan(mode="grouped", ratios=ratios, seed=seed, group_level=level)
    assigner = SplitAssigner(plan=plan, codes=_codes(counts))
    return {code: assigner.split_for(code, 0) for code in counts}


def test_grouped_gives_every_wanted_split_a_code_even_with_few_codes():
    assignment = _grouped({f"C{i}": 3 for i in range(5)})
    assert Counter(assignment.values()) == {"train": 3, "validation": 1, "test": 1}


def test_grouped_follows_the_ratios_by_pairs_and_is_reproducible():
    counts = {f"C{i:03d}": 1 + i % 7 for i in range(300)}
    assignment = _grouped(counts, seed=4)
    pairs = Counter()
    for code, split in assignment.items():
        pairs[split] += counts[code]
    total = sum(counts.values())
    assert abs(pairs["train"] / total - 0.8) < 0.02
    assert abs(pairs["test"] / total - 0.1) < 0.02
    assert _grouped(counts, seed=4) == assignment
    assert _grouped(counts, seed=5) != assignment


def test_a_zero_ratio_split_gets_nothing():
    assert set(_grouped({f"C{i}": 1 for i in range(10)}, ratios=(0.9, 0.0, 0.1)).values()) == {"train", "test"}


def test_stratified_spreads_each_code_in_the_ratios():
    assigner = SplitAssigner(
        plan=SplitPlan(mode="stratified", ratios=(0.6, 0.2, 0.2), seed=9), codes=_codes({"A": 10, "B": 5})
    )
    for code, count in (("A", 10), ("B", 5)):
        splits = Counter(assigner.split_for(code, position) for position in range(count))
        assert splits == {
            "train": round(count * 0.6),
            "validation": round(count * 0.8) - round(count * 0.6),
            "test": count - round(count * 0.8),
        }


@pytest.mark.parametrize(("raw", "expected"), [("0.8,0.1,0.1", (0.8, 0.1, 0.1)), ("80/10/10", (0.8, 0.1, 0.1))])
def test_ratios_parse(raw, expected):
    assert ratios_parse(raw) == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["0.8,0.2", "a,b,c", "0,0,0"])
def test_ratios_parse_refuses_what_is_not_three_ratios(raw):
    with pytest.raises(SplitOptionError):
        ratios_parse(raw)
