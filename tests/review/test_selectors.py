"""The review round: which decisions count, who has decided, what a reviewer may see."""

import pytest

from generation.models import ArtefactKind, Case, CaseStatus
from generation.selectors import current_version
from generation.services.cases import case_transition
from review import selectors, services
from review.models import ReviewAction, ReviewDecision
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db


def _decide(case, reviewer, action, **kwargs):
    services.review_decision_record(
        case=case, reviewer=reviewer, action=action, seen=seen(case), opened_at=None, **kwargs
    )


@pytest.fixture
def case_in_second_round():
    """A pair rejected by one reviewer, sent back to review (a new round), then approved by
    a second reviewer, skipped by a third, and given an admin's adjudication row."""
    case = case_in_review(CaseStatus.PAIR_REVIEW, reviews_required=3)
    earlier, approver, skipper = ClinicianFactory(), ClinicianFactory(), ClinicianFactory()
    _decide(case, earlier, ReviewAction.REJECT, reason="other", comment="EARLIER-ROUND")
    case_transition(case=case, to=CaseStatus.REJECTED)
    case_transition(case=case, to=CaseStatus.PAIR_REVIEW)
    _decide(case, approver, ReviewAction.APPROVE, comment="THIS-ROUND")
    _decide(case, skipper, ReviewAction.SKIP)
    ReviewDecision.objects.create(
        case=case,
        stage="pair",
        reviewer=ClinicianFactory(),
        action=ReviewAction.APPROVE,
        note_version=current_version(case=case, kind=ArtefactKind.NOTE),
        is_adjudication=True,
    )
    case.refresh_from_db()
    return case, earlier, approver, skipper


def test_only_this_rounds_verdicts_count(case_in_second_round):
    case, *_ = case_in_second_round
    # The earlier round's rejection, the skip and the adjudication row are not verdicts of this round.
    assert selectors.round_tally(case=case) == selectors.RoundTally(reviews=1, accepts=1, refusals=0)
    assert case.status == CaseStatus.PAIR_REVIEW  # 1 of 3 reviews: nothing settled


def test_a_skip_leaves_your_queue_but_decides_nothing(case_in_second_round):
    case, earlier, approver, skipper = case_in_second_round
    assert selectors.reviewer_has_decided(case=case, reviewer=approver)
    assert not selectors.reviewer_has_decided(case=case, reviewer=skipper)
    assert not selectors.reviewer_has_decided(case=case, reviewer=earlier)
    queue = selectors.case_queue_for_reviewer(reviewer=earlier, queue="pair", filters=selectors.QueueFilters())
    assert list(queue) == [case]
    for decided in (approver, skipper):
        queue = selectors.case_queue_for_reviewer(reviewer=decided, queue="pair", filters=selectors.QueueFilters())
        assert list(queue) == []


def test_blind_review_shows_only_your_own_decisions_until_you_decide_in_this_round(case_in_second_round):
    case, earlier, approver, skipper = case_in_second_round

    def comments(viewer):
        sees_others = selectors.sees_others_work(case=case, viewer=viewer, can_adjudicate=False)
        return [d.comment for d in selectors.decisions_visible_to(case=case, viewer=viewer, sees_others=sees_others)]

    # Not even an earlier round's verdicts: after an edit, they judged what is still on screen.
    assert comments(ClinicianFactory()) == []
    assert comments(skipper) == [""]  # only the skip, their own
    assert comments(earlier) == ["EARLIER-ROUND"]
    # Once you have decided in this round, you see everyone's decisions.
    assert len(comments(approver)) == 4


def test_a_split_of_the_required_reviews_is_disputed():
    case = case_in_review(CaseStatus.NOTE_REVIEW, reviews_required=2)
    _decide(case, ClinicianFactory(), ReviewAction.APPROVE)
    assert not selectors.case_is_disputed(case=case)
    _decide(case, ClinicianFactory(), ReviewAction.REJECT, reason="other", comment="No.")
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW  # a gated stage's split waits for an adjudicator
    assert selectors.case_is_disputed(case=case)


def test_bounded_counts_answers_every_count_in_one_statement(django_assert_num_queries):
    cases = [case_in_review(CaseStatus.PAIR_REVIEW) for _ in range(3)]
    waiting = Case.objects.filter(status=CaseStatus.PAIR_REVIEW)
    counted = {
        "all": (waiting, 10),
        "bounded": (waiting, 2),
        "one": (waiting.filter(pk=cases[0].pk), 10),
        "none": (Case.objects.none(), 10),
    }
    with django_assert_num_queries(1):
        counts = selectors.bounded_counts(counted)
    assert {name: (count.counted, str(count)) for name, count in counts.items()} == {
        "all": (3, "3"),
        "bounded": (3, "2+"),
        "one": (1, "1"),
        "none": (0, "0"),
    }
