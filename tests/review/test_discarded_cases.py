"""A case an admin discarded is kept, and is in no review queue and no export: the queues
and the export select only the statuses they mean."""

from __future__ import annotations

import pytest

from generation.models import CaseStatus, ReviewStage
from generation.services.attention import case_discard
from generation.services.cases import case_transition
from review import selectors, services
from review.datasets.export.query import ExportFilters, approved_pairs
from review.models import ReviewAction, ReviewerAssignment
from review.selectors import QueueFilters
from tests.factories import AdminFactory, ClinicianFactory, approved_pair_create
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db


def _rejected_then_discarded(reviewer, **case_fields):
    """A pair a clinician rejected, then assigned to `reviewer` (an assignment left open),
    which an admin then discarded."""
    case = case_in_review(CaseStatus.PAIR_REVIEW, **case_fields)
    services.review_decision_record(
        case=case,
        reviewer=ClinicianFactory(),
        action=ReviewAction.REJECT,
        reason="other",
        comment="Not plausible.",
        seen=seen(case),
        opened_at=None,
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.REJECTED
    ReviewerAssignment.objects.create(case=case, stage=ReviewStage.PAIR, reviewer=reviewer)
    case_discard(case=case, discarded_by=AdminFactory(), reason="Not worth fixing")
    return case


@pytest.mark.parametrize("queue", list(selectors.QUEUE_LABELS))
def test_a_discarded_case_is_in_no_review_queue(queue):
    reviewer = AdminFactory()  # an admin sees the adjudication queue too
    discarded = _rejected_then_discarded(reviewer)
    waiting = case_in_review(CaseStatus.PAIR_REVIEW, batch=discarded.batch)
    ReviewerAssignment.objects.create(case=waiting, stage=ReviewStage.PAIR, reviewer=reviewer)

    for filters in (QueueFilters(), QueueFilters(status=CaseStatus.DISCARDED), QueueFilters(batch=discarded.batch_id)):
        shown = selectors.case_queue_for_reviewer(reviewer=reviewer, queue=queue, filters=filters)
        assert discarded not in shown
    if queue in (ReviewStage.PAIR, selectors.ASSIGNED_QUEUE):
        # The queue itself works: the pair still waiting is listed.
        assert waiting in selectors.case_queue_for_reviewer(reviewer=reviewer, queue=queue, filters=QueueFilters())


def test_a_discarded_case_is_in_no_export_even_with_an_approving_decision():
    exported = approved_pair_create()
    discarded = approved_pair_create(batch=exported.batch)  # approved once, then sent back and rejected
    case_transition(case=discarded, to=CaseStatus.PAIR_REVIEW)
    case_transition(case=discarded, to=CaseStatus.REJECTED)
    case_discard(case=discarded, discarded_by=AdminFactory())

    pairs = list(approved_pairs(filters=ExportFilters()))
    assert pairs == [exported]
    assert list(approved_pairs(filters=ExportFilters(batch_ids=(discarded.batch_id,)))) == [exported]
