"""A review decision costs the same in a small batch and in a large one: it reads and writes its
case, and moves its batch's stored counters, but never counts the batch's other cases."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import CaseStatus, GenerationBatch
from review import services
from review.models import ReviewAction
from tests.factories import ClinicianFactory, GenerationBatchFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db


def _batch_of_pairs(size: int) -> GenerationBatch:
    batch = GenerationBatchFactory()
    for slot in range(size):
        case_in_review(CaseStatus.PAIR_REVIEW, batch=batch, slot=slot + 1)
    return batch


def _approval_statements(batch: GenerationBatch) -> list[str]:
    case = batch.cases.order_by("id").first()
    with CaptureQueriesContext(connection) as captured:
        services.review_decision_record(
            case=case, reviewer=ClinicianFactory(), action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
        )
    case.refresh_from_db()
    assert case.status == CaseStatus.APPROVED
    return [query["sql"] for query in captured.captured_queries]


def _reads_cases_by_batch(sql: str) -> bool:
    """A statement that filters cases by their batch (a join on the batch is not one)."""
    return bool(re.search(r'"generation_case"\."batch_id" = \d', sql))


def test_an_approval_costs_the_same_statements_in_a_small_batch_and_a_large_one():
    small, large = _batch_of_pairs(2), _batch_of_pairs(12)

    in_small, in_large = _approval_statements(small), _approval_statements(large)

    assert len(in_small) == len(in_large)
    assert not [sql for sql in in_large if _reads_cases_by_batch(sql)]
    large.refresh_from_db()
    assert large.approved_count == 1
