import random

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from review import selectors
from review.agreement import MIN_OVERLAP, combined, fleiss_kappa, krippendorff_alpha, pairwise_cohen, tally
from review.models import ReviewAction, ReviewDecision
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review


def kappa(first, second):
    return pairwise_cohen(tally({"first": first, "second": second}))[0][2]


def test_cohen_kappa_matches_the_textbook_value():
    # 6 items, one disagreement: po = 5/6, pe = (4/6*3/6 + 2/6*3/6) = 1/2 -> kappa = 2/3.
    first = {1: "a", 2: "r", 3: "a", 4: "a", 5: "r", 6: "a"}
    second = {1: "a", 2: "r", 3: "r", 4: "a", 5: "r", 6: "a"}
    result = kappa(first, second)
    assert result.value == pytest.approx(2 / 3)
    assert result.items == 6
    assert result.note == ""


def test_cohen_kappa_uses_only_items_both_rated_and_says_when_too_few():
    result = kappa({1: "a", 2: "r", 3: "a"}, {2: "r", 3: "a", 9: "a"})
    assert result.items == 2
    assert str(MIN_OVERLAP) in result.note


def test_cohen_kappa_is_undefined_when_everyone_used_one_label():
    result = kappa(dict.fromkeys(range(8), "a"), dict.fromkeys(range(8), "a"))
    assert result.value is None
    assert "undefined" in result.note


def test_no_overlap_gives_no_value():
    result = kappa({1: "a"}, {2: "a"})
    assert result.value is None
    assert result.items == 0


def test_fleiss_kappa_matches_a_hand_computed_value():
    # Items x (accept, refuse) counts: (3,0) (0,3) (2,1) (3,0) (1,2): P̄ = 11/15, Pe = .52 -> 0.4444.
    ratings = {
        "ann": {1: "a", 2: "r", 3: "a", 4: "a", 5: "r"},
        "bob": {1: "a", 2: "r", 3: "r", 4: "a", 5: "r"},
        "cy": {1: "a", 2: "r", 3: "a", 4: "a", 5: "a"},
    }
    result = fleiss_kappa(tally(ratings))
    assert result.value == pytest.approx(0.4444, abs=1e-4)
    assert (result.items, result.raters) == (5, 3)


def test_fleiss_kappa_uses_items_with_the_common_rating_count():
    ratings = {"ann": {1: "a", 2: "r", 3: "a"}, "bob": {1: "a", 2: "r", 3: "r"}, "cy": {1: "a"}}
    result = fleiss_kappa(tally(ratings))
    assert result.items == 2
    assert "exactly 2 ratings" in result.note


def test_krippendorff_alpha_is_one_for_perfect_ordinal_agreement_and_lower_when_scores_spread():
    perfect = {"ann": {"v1": 9, "v2": 3, "v3": 6}, "bob": {"v1": 9, "v2": 3, "v3": 6}}
    near = {"ann": {"v1": 9, "v2": 3, "v3": 6}, "bob": {"v1": 8, "v2": 3, "v3": 7}}
    far = {"ann": {"v1": 9, "v2": 3, "v3": 6}, "bob": {"v1": 2, "v2": 9, "v3": 4}}
    assert krippendorff_alpha(tally(perfect), level="ordinal").value == pytest.approx(1.0)
    near_alpha = krippendorff_alpha(tally(near), level="ordinal").value
    far_alpha = krippendorff_alpha(tally(far), level="ordinal").value
    assert near_alpha is not None
    assert far_alpha is not None
    assert far_alpha < near_alpha < 1.0


def test_krippendorff_alpha_accepts_missing_ratings():
    ratings = {"ann": {1: "a", 2: "r", 3: "a"}, "bob": {1: "a", 2: "r"}, "cy": {2: "r", 3: "a"}}
    result = krippendorff_alpha(tally(ratings))
    assert result.value == pytest.approx(1.0)
    assert result.items == 3


def test_pairwise_cohen_lists_every_pair():
    ratings = {"ann": {1: "a"}, "bob": {1: "a"}, "cy": {1: "r"}}
    assert [(a, b) for a, b, _ in pairwise_cohen(tally(ratings))] == [("ann", "bob"), ("ann", "cy"), ("bob", "cy")]


def _random_ratings(seed: int, *, labels: tuple[object, ...]) -> dict[str, dict[int, object]]:
    rng = random.Random(seed)
    raters = ["ann", "bob", "cy", "dee"]
    return {rater: {item: rng.choice(labels) for item in range(40) if rng.random() < 0.7} for rater in raters}


@pytest.mark.parametrize("seed", range(5))
def test_the_counted_statistics_equal_scikit_learns_kappa_and_the_packages_alpha_on_the_raw_ratings(seed):
    ratings = _random_ratings(seed, labels=("accept", "refuse"))
    counted = tally(ratings)
    for first, second, result in pairwise_cohen(counted):
        shared = sorted(set(ratings[first]) & set(ratings[second]))
        expected = cohen_kappa_score([ratings[first][i] for i in shared], [ratings[second][i] for i in shared])
        assert result.value == pytest.approx(expected)
    raters = sorted(ratings)
    data = np.array([[{"accept": 0, "refuse": 1}.get(ratings[r].get(i), np.nan) for i in range(40)] for r in raters])
    assert krippendorff_alpha(counted).value == pytest.approx(krippendorff.alpha(data, level_of_measurement="nominal"))

    scores = _random_ratings(seed, labels=(1, 4, 5, 9))
    data = np.array([[scores[r].get(i, np.nan) for i in range(40)] for r in sorted(scores)], dtype=float)
    expected = krippendorff.alpha(data, level_of_measurement="ordinal")
    assert krippendorff_alpha(tally(scores), level="ordinal").value == pytest.approx(expected)


def test_a_combined_tally_is_the_tally_of_the_ratings_put_together():
    first = {"ann": {1: "a", 2: "r"}, "bob": {1: "a", 2: "a"}}
    second = {"ann": {3: "r"}, "cy": {3: "r", 4: "a"}}
    together = {"ann": {1: "a", 2: "r", 3: "r"}, "bob": {1: "a", 2: "a"}, "cy": {3: "r", 4: "a"}}
    assert combined([tally(first), tally(second)]) == tally(together)


def _decide(case, reviewer, action):
    extra = {"reason": "other", "comment": "No."} if action == ReviewAction.REJECT else {}
    versions = {f"{v.kind}_version": v for v in case.versions.all()}
    ReviewDecision.objects.create(case=case, stage="pair", reviewer=reviewer, action=action, **versions, **extra)


@pytest.mark.django_db
def test_the_database_tally_counts_each_reviewers_latest_verdict_per_item():
    ann, bob, cy = (ClinicianFactory(username=name) for name in ("ann", "bob", "cy"))
    cases = [case_in_review(reviews_required=3) for _ in range(4)]
    A, R, S = ReviewAction.APPROVE, ReviewAction.REJECT, ReviewAction.SKIP
    script = [
        (0, ann, R), (0, ann, A), (0, bob, A), (0, cy, R),  # ann changed her mind: her latest counts
        (1, ann, R), (1, bob, R),
        (2, bob, A), (2, cy, S),  # a skip is no verdict: one rating only
        (3, cy, ReviewAction.EDIT),
    ]  # fmt: skip
    for index, reviewer, action in script:
        _decide(cases[index], reviewer, action)
    ReviewDecision.objects.create(
        case=cases[3], stage="pair", reviewer=ann, action=A, is_adjudication=True,
        note_version=cases[3].versions.get(kind="note"),
    )  # fmt: skip
    c = [case.pk for case in cases]
    expected = tally({
        "ann": {c[0]: "accept", c[1]: "refuse"},
        "bob": {c[0]: "accept", c[1]: "refuse", c[2]: "accept"},
        "cy": {c[0]: "refuse", c[3]: "accept"},
    })  # fmt: skip

    tallies = selectors.verdict_tallies()

    assert tallies["pair"] == expected
    assert tallies["note"] == tally({})


@pytest.mark.django_db
def test_the_kept_tally_is_counted_again_once_a_decision_is_recorded(settings, django_assert_num_queries):
    settings.AGREEMENT_TALLY_CACHE = True
    selectors._tally_rows_kept.clear()  # what earlier tests, rolled back, may have left
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    first, second = case_in_review(reviews_required=2), case_in_review(reviews_required=2)
    _decide(first, ann, ReviewAction.APPROVE)
    _decide(first, bob, ReviewAction.REJECT)
    counted = selectors.verdict_tallies()
    with django_assert_num_queries(2):  # the decisions' state and the raters' names, no tally
        assert selectors.verdict_tallies() == counted
    _decide(second, ann, ReviewAction.APPROVE)
    _decide(second, bob, ReviewAction.APPROVE)
    expected = tally(
        {"ann": {first.pk: "accept", second.pk: "accept"}, "bob": {first.pk: "refuse", second.pk: "accept"}}
    )
    assert selectors.verdict_tallies()["pair"] == expected
    selectors._tally_rows_kept.clear()
