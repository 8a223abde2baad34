"""When the last two cases of a batch finish at once, the batch completes: each one's counter
delta waits for the other's on the batch row and adds to it. (SQLite runs writes one at a
time, so this needs PostgreSQL.)"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from generation.models import BatchStatus, CaseStatus
from generation.services.cases import case_transition
from tests.factories import CaseFactory
from tests.generation.pipeline_fakes import make_batch

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks are PostgreSQL's; SQLite runs writes one at a time"
)


def _a_backend_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_the_last_two_cases_finishing_at_once_complete_their_batch():
    batch = make_batch()
    first, second = (CaseFactory(batch=batch, slot=slot, status=CaseStatus.DIALOGUE_GENERATING) for slot in (1, 2))
    first_moved, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def finish(case, *, hold: bool) -> None:
        try:
            with transaction.atomic():
                case_transition(case=case, to=CaseStatus.PAIR_REVIEW)
                if hold:  # commit only once the other transaction waits for the batch row
                    first_moved.set()
                    release.wait(timeout=30)
        except BaseException as error:  # reported by the test thread
            failures.append(error)
            first_moved.set()
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=finish, args=(first,), kwargs={"hold": True}),
        threading.Thread(target=finish, args=(second,), kwargs={"hold": False}),
    ]
    threads[0].start()
    assert first_moved.wait(timeout=30)
    threads[1].start()
    for _ in range(300):  # until the second transaction waits for the first's batch row
        if _a_backend_waits_for_a_lock():
            break
        time.sleep(0.05)
    else:
        pytest.fail("the second transaction never waited for the batch row")
    release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert not failures, failures
    batch.refresh_from_db()
    assert (batch.status, batch.in_flight_count) == (BatchStatus.COMPLETED, 0)
    assert batch.finished_at is not None
