"""Row locks take only the rows they mean. On PostgreSQL, SELECT ... FOR UPDATE over a join
locks every joined row unless told `of`: the review lock of one case locked its batch too,
so every review write in the batch waited behind every other. (SQLite locks the whole
database for a write, so these tests need PostgreSQL.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, connections, transaction

from generation.models import CaseStatus, GenerationBatch
from generation.services.attention import case_scenario_rerun
from review import services
from review.services._common import case_lock
from tests.factories import AdminFactory, CaseFactory, ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks are PostgreSQL's; SQLite locks the whole database"
)
pytestmark = [on_postgresql]


@contextmanager
def held_in_another_connection(lock: Callable[[], object]) -> Iterator[None]:
    """Run `lock` in a transaction of another connection (another thread) and keep that
    transaction open until the block ends."""
    locked, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                lock()
                locked.set()
                release.wait(timeout=60)
        except BaseException as error:  # reported by the test thread
            failures.append(error)
            locked.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=30), "the other connection never took its lock"
        assert not failures, failures
        yield
    finally:
        release.set()
        holder.join(timeout=60)


@contextmanager
def lock_timeout(seconds: int) -> Iterator[None]:
    """Within the block, a statement that waits longer than `seconds` for a row lock fails."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{seconds}s'")
        yield


@pytest.mark.django_db(transaction=True)
def test_the_review_lock_of_one_case_leaves_its_batch_row_free():
    case = case_in_review(CaseStatus.PAIR_REVIEW)

    with held_in_another_connection(lambda: case_lock(case)), lock_timeout(2):
        # Fails with "canceling statement due to lock timeout" when the review lock took the batch row.
        updated = GenerationBatch.objects.filter(pk=case.batch_id).update(name="Renamed while a case is locked")

    assert updated == 1


@pytest.mark.django_db(transaction=True)
def test_a_decision_on_one_case_goes_through_while_another_case_of_the_batch_is_locked():
    locked = case_in_review(CaseStatus.PAIR_REVIEW)
    other = case_in_review(CaseStatus.PAIR_REVIEW, batch=locked.batch)
    reviewer = ClinicianFactory()

    with held_in_another_connection(lambda: case_lock(locked)), lock_timeout(2):
        services.review_decision_record(
            case=other, reviewer=reviewer, action="approve", seen=seen(other), opened_at=None
        )

    other.refresh_from_db()
    other.batch.refresh_from_db()
    assert other.status == CaseStatus.APPROVED
    assert other.batch.approved_count == 1


@pytest.mark.django_db
def test_an_admin_action_locks_a_case_without_a_role(django_capture_on_commit_callbacks):
    # The role is a nullable foreign key: FOR UPDATE over its outer join is refused outright
    # ("FOR UPDATE cannot be applied to the nullable side of an outer join").
    case = CaseFactory(status=CaseStatus.FAILED, role=None)

    with django_capture_on_commit_callbacks(execute=False):
        step = case_scenario_rerun(case=case, comment="Make the patient younger.", requested_by=AdminFactory())

    case.refresh_from_db()
    assert case.status == CaseStatus.SCENARIO_GENERATING
    assert step.feedback == "Make the patient younger."
