"""Choosing a batch's codes and pairs: top-N with chapter and block filters, stratification
across chapters, and the top-up to K approved pairs per code. Every expectation below is
worked out by hand in the comment above it."""

from __future__ import annotations

import pytest

from generation.models import CaseStatus
from generation.services.code_selection import (
    BatchPlanError,
    CodeSelection,
    TopUp,
    chapter_quotas,
    codes_plan,
    codes_select,
    missing_pairs_allocate,
    shares_capped,
)
from tests.factories import CaseFactory, IcdCodeFactory

# --- The arithmetic, on plain numbers -------------------------------------------------------


def test_quotas_give_the_minimum_then_share_the_rest_by_frequency():
    # 1 each (3), then 7 split 6:3:1 = 4.2, 2.1, 0.7 -> 4, 2, 0 and the one left over to
    # the largest remainder (C, 0.7): A 1+4, B 1+2, C 1+1.
    quotas = chapter_quotas(
        total=10, minimum=1, weights={"A": 600, "B": 300, "C": 100}, available={"A": 50, "B": 50, "C": 50}
    )
    assert quotas == {"A": 5, "B": 3, "C": 2}


def test_quotas_never_ask_a_chapter_for_more_codes_than_it_has():
    # Minimum 2, but C has one code: floors 2, 2, 1 (5). C has no room left, so the other 5
    # go to A and B 600:300 = 3.33, 1.67 -> 3, 1, and the one left to B (0.67 > 0.33).
    quotas = chapter_quotas(
        total=10, minimum=2, weights={"A": 600, "B": 300, "C": 100}, available={"A": 50, "B": 50, "C": 1}
    )
    assert quotas == {"A": 5, "B": 4, "C": 1}


def test_quotas_take_everything_when_the_chapters_hold_fewer_codes_than_asked():
    assert chapter_quotas(total=10, minimum=0, weights={"A": 5, "B": 1}, available={"A": 2, "B": 1}) == {
        "A": 2,
        "B": 1,
    }


def test_a_minimum_the_top_n_cannot_hold_is_refused():
    # 3 chapters x 2 = 6 codes at least, for a top 4.
    with pytest.raises(BatchPlanError, match="needs at least 6 codes; the top N is 4"):
        chapter_quotas(total=4, minimum=2, weights={"A": 1, "B": 1, "C": 1}, available={"A": 9, "B": 9, "C": 9})


def test_a_share_past_its_cap_is_handed_to_the_others():
    # 6 split 8:1:1 gives A 4.8, past its cap of 2: A gets 2 and the 4 left split 1:1.
    assert shares_capped(total=6, weights={"A": 8, "B": 1, "C": 1}, caps={"A": 2, "B": 10, "C": 10}) == {
        "A": 2,
        "B": 2,
        "C": 2,
    }


def test_missing_pairs_past_the_total_cap_go_one_per_code_per_round():
    # Round 1: a, b, c one each (3); round 2: a and c (b wanted only 1) -> 5, the cap.
    assert missing_pairs_allocate(missing={"a": 3, "b": 1, "c": 4}, per_code_cap=None, total_cap=5) == {
        "a": 2,
        "b": 1,
        "c": 2,
    }


def test_missing_pairs_are_capped_per_code_and_codes_not_short_are_left_out():
    assert missing_pairs_allocate(missing={"a": 5, "b": 0, "c": 2}, per_code_cap=3, total_cap=None) == {
        "a": 3,
        "c": 2,
    }


# --- Top-N, filters and stratification, in the database -----------------------------------


@pytest.fixture
def catalogue(db):
    """Ten billable codes in three chapters, with frequencies (and one without)."""

    def code(code, chapter, block, frequency):
        return IcdCodeFactory(code=code, chapter=chapter, block=block, frequency=frequency)

    return {
        row[0]: code(*row)
        for row in [
            ("E11.9", "4", "E08-E13", 500),
            ("E10.9", "4", "E08-E13", 300),
            ("E03.9", "4", "E00-E07", 400),
            ("E05.9", "4", "E00-E07", 100),
            ("E13.9", "4", "E08-E13", None),
            ("I10", "9", "I10-I1A", 80),
            ("I25.10", "9", "I20-I25", 20),
            ("J02.9", "10", "J00-J06", 5),
        ]
    }


def chosen(selection):
    return [code.code for code in codes_select(selection)]


@pytest.mark.django_db
def test_top_n_is_the_most_frequent_billable_codes(catalogue):
    assert chosen(CodeSelection(top=3)) == ["E11.9", "E03.9", "E10.9"]


@pytest.mark.django_db
def test_top_n_within_a_block_and_within_chapters(catalogue):
    assert chosen(CodeSelection(top=5, blocks=["e08-e13"])) == ["E11.9", "E10.9"]  # E13.9 has no frequency
    assert chosen(CodeSelection(top=2, chapters=["9", "10"])) == ["I10", "I25.10"]


@pytest.mark.django_db
def test_a_filter_without_top_n_takes_every_billable_code_of_it(catalogue):
    assert chosen(CodeSelection(blocks=["E08-E13"])) == ["E10.9", "E11.9", "E13.9"]


@pytest.mark.django_db
def test_an_unknown_block_or_chapter_is_named(catalogue):
    with pytest.raises(BatchPlanError, match=r"block\(s\) Z99-Z99"):
        codes_select(CodeSelection(top=3, blocks=["E08-E13", "Z99-Z99"]))
    with pytest.raises(BatchPlanError, match=r"chapter\(s\) 23"):
        codes_select(CodeSelection(top=3, chapters=["23"]))


@pytest.mark.django_db
def test_stratified_top_n_spreads_codes_over_the_chapters(catalogue):
    # Frequencies per chapter: 4 -> 1300 (4 ranked codes), 9 -> 100 (2), 10 -> 5 (1).
    # Minimum 1 each (3), the one left split 1300:100:5 goes to chapter 4 (0.92).
    # Chapter 4 takes its top 2 (E11.9, E03.9), 9 its top 1 (I10), 10 its only code (J02.9).
    # The plain top 4 would be E11.9, E03.9, E10.9, E05.9: all from chapter 4.
    assert chosen(CodeSelection(top=4, minimum_per_chapter=1)) == ["E11.9", "E03.9", "I10", "J02.9"]


@pytest.mark.django_db
def test_stratifying_without_a_top_n_is_refused(catalogue):
    with pytest.raises(BatchPlanError, match="needs a top N"):
        codes_select(CodeSelection(chapters=["4"], minimum_per_chapter=1))


# --- Top-up planning -----------------------------------------------------------------------


def cases(code, *statuses):
    for status in statuses:
        CaseFactory(code=code, status=status)


@pytest.mark.django_db
def test_a_top_up_plans_only_the_missing_pairs(catalogue):
    short, done, new = catalogue["E11.9"], catalogue["I10"], catalogue["J02.9"]
    # E11.9: 2 approved + 1 in review + 1 failed (may still be retried) count; the rejected one does not.
    cases(short, CaseStatus.APPROVED, CaseStatus.APPROVED, CaseStatus.PAIR_REVIEW, CaseStatus.FAILED)
    cases(short, CaseStatus.REJECTED, CaseStatus.DISCARDED)
    cases(done, *[CaseStatus.APPROVED] * 5)
    # Target 5: E11.9 lacks 5 - 2 - 2 = 1, I10 nothing, J02.9 all 5, capped at 3 per code.
    selection = CodeSelection(codes=["E11.9", "I10", "J02.9"])
    plan = codes_plan(selection=selection, pairs_per_code=1, topup=TopUp(target=5, per_code_cap=3))
    assert [(row.code.code, row.approved, row.underway, row.new_pairs) for row in plan] == [
        ("E11.9", 2, 2, 1),
        ("I10", 5, 0, 0),
        ("J02.9", 0, 0, 3),
    ]
    assert new.pk  # the code with no case at all is counted as 0 / 0


@pytest.mark.django_db
def test_a_top_up_stays_within_its_total_cap(catalogue):
    # Each of the top 3 lacks 4; a cap of 5 in total: round 1 gives 1 each, round 2 the first two.
    plan = codes_plan(selection=CodeSelection(top=3), pairs_per_code=1, topup=TopUp(target=4, total_cap=5))
    assert [(row.code.code, row.new_pairs) for row in plan] == [("E11.9", 2), ("E03.9", 2), ("E10.9", 1)]


@pytest.mark.django_db
def test_without_a_top_up_every_code_gets_the_pairs_per_code(catalogue):
    cases(catalogue["I10"], CaseStatus.APPROVED)
    plan = codes_plan(selection=CodeSelection(codes=["I10", "J02.9"]), pairs_per_code=4)
    assert [(row.code.code, row.approved, row.new_pairs) for row in plan] == [("I10", 1, 4), ("J02.9", 0, 4)]
