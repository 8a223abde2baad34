import pytest

from review.agreement import MIN_OVERLAP, cohen_kappa, fleiss_kappa, krippendorff_alpha, pairwise_cohen


def test_cohen_kappa_matches_the_textbook_value():
    # 6 items, one disagreement: po = 5/6, pe = (4/6*3/6 + 2/6*3/6) = 1/2 -> kappa = 2/3.
    first = {1: "a", 2: "r", 3: "a", 4: "a", 5: "r", 6: "a"}
    second = {1: "a", 2: "r", 3: "r", 4: "a", 5: "r", 6: "a"}
    result = cohen_kappa(first=first, second=second)
    assert result.value == pytest.approx(2 / 3)
    assert result.items == 6
    assert result.note == ""


def test_cohen_kappa_uses_only_items_both_rated_and_says_when_too_few():
    result = cohen_kappa(first={1: "a", 2: "r", 3: "a"}, second={2: "r", 3: "a", 9: "a"})
    assert result.items == 2
    assert str(MIN_OVERLAP) in result.note


def test_cohen_kappa_is_undefined_when_everyone_used_one_label():
    result = cohen_kappa(first=dict.fromkeys(range(8), "a"), second=dict.fromkeys(range(8), "a"))
    assert result.value is None
    assert "undefined" in result.note


def test_no_overlap_gives_no_value():
    result = cohen_kappa(first={1: "a"}, second={2: "a"})
    assert result.value is None
    assert result.items == 0


def test_fleiss_kappa_matches_a_hand_computed_value():
    # Items x (accept, refuse) counts: (3,0) (0,3) (2,1) (3,0) (1,2): P̄ = 11/15, Pe = .52 -> 0.4444.
    ratings = {
        "ann": {1: "a", 2: "r", 3: "a", 4: "a", 5: "r"},
        "bob": {1: "a", 2: "r", 3: "r", 4: "a", 5: "r"},
        "cy": {1: "a", 2: "r", 3: "a", 4: "a", 5: "a"},
    }
    result = fleiss_kappa(ratings)
    assert result.value == pytest.approx(0.4444, abs=1e-4)
    assert (result.items, result.raters) == (5, 3)


def test_fleiss_kappa_uses_items_with_the_common_rating_count():
    ratings = {"ann": {1: "a", 2: "r", 3: "a"}, "bob": {1: "a", 2: "r", 3: "r"}, "cy": {1: "a"}}
    result = fleiss_kappa(ratings)
    assert result.items == 2
    assert "exactly 2 ratings" in result.note


def test_krippendorff_alpha_is_one_for_perfect_ordinal_agreement_and_lower_when_scores_spread():
    perfect = {"ann": {"v1": 9, "v2": 3, "v3": 6}, "bob": {"v1": 9, "v2": 3, "v3": 6}}
    near = {"ann": {"v1": 9, "v2": 3, "v3": 6}, "bob": {"v1": 8, "v2": 3, "v3": 7}}
    far = {"ann": {"v1": 9, "v2": 3, "v3": 6}, "bob": {"v1": 2, "v2": 9, "v3": 4}}
    assert krippendorff_alpha(perfect, level="ordinal").value == pytest.approx(1.0)
    near_alpha = krippendorff_alpha(near, level="ordinal").value
    far_alpha = krippendorff_alpha(far, level="ordinal").value
    assert near_alpha is not None
    assert far_alpha is not None
    assert far_alpha < near_alpha < 1.0


def test_krippendorff_alpha_accepts_missing_ratings():
    ratings = {"ann": {1: "a", 2: "r", 3: "a"}, "bob": {1: "a", 2: "r"}, "cy": {2: "r", 3: "a"}}
    result = krippendorff_alpha(ratings)
    assert result.value == pytest.approx(1.0)
    assert result.items == 3


def test_pairwise_cohen_lists_every_pair():
    ratings = {"ann": {1: "a"}, "bob": {1: "a"}, "cy": {1: "r"}}
    assert [(a, b) for a, b, _ in pairwise_cohen(ratings)] == [("ann", "bob"), ("ann", "cy"), ("bob", "cy")]
