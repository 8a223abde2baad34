"""A batch's stored counters and status, kept by deltas as its cases move.

Every write that moves a case (generation.services.cases) adds what it changed to the
counters of the case's batch, in its own transaction, with one UPDATE whose cost does not
depend on the batch's size. The same UPDATE settles the batch's status: a started batch is
complete when none of its cases is in flight, and running again once one is.

Race safety: the UPDATE locks the batch row until the transaction ends, and each UPDATE adds
to the row as the last committed writer left it (PostgreSQL re-reads a row it waited for).
So when the last two cases of a batch finish at once, the second decrement sees the first
and brings `in_flight_count` to 0, completing the batch. On SQLite, writes are serial.

batch_counters_recount recomputes everything from the cases (planning, the recovery pass,
an admin's repair); its lock makes it safe beside concurrent deltas.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Case as Choose
from django.db.models import F, Q, Value, When
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from generation import selectors
from generation.models import FAILED_STATUSES, IN_FLIGHT_STATUSES, BatchStatus, CaseStatus, GenerationBatch

# The counters that follow the cases' statuses: counter -> the statuses it counts.
STATUS_COUNTERS: dict[str, frozenset[str]] = {
    "in_flight_count": IN_FLIGHT_STATUSES,
    "failed_count": FAILED_STATUSES,
    "approved_count": frozenset({CaseStatus.APPROVED}),
}
# The statuses the counters settle: a draft, paused or cancelled batch keeps its own.
SETTLED_BY_COUNTERS = (BatchStatus.QUEUED, BatchStatus.RUNNING, BatchStatus.COMPLETED)


def counted_by(status: str) -> frozenset[str]:
    """The status counters a case in `status` counts in."""
    return frozenset(counter for counter, statuses in STATUS_COUNTERS.items() if status in statuses)


def status_deltas(*, moved: Mapping[str, int], to: str) -> Counter[str]:
    """How the status counters change when moved[status] cases go from each status to `to`."""
    deltas: Counter[str] = Counter()
    for status, number in moved.items():
        for counter in counted_by(to) - counted_by(status):
            deltas[counter] += number
        for counter in counted_by(status) - counted_by(to):
            deltas[counter] -= number
    return deltas


def new_cases_deltas(*, statuses: Iterable[str], produced: int) -> Counter[str]:
    """How the counters change when cases in `statuses` are created, `produced` of them produced."""
    deltas: Counter[str] = Counter(produced_count=produced)
    for status in statuses:
        deltas["planned_count"] += 1
        deltas.update(counted_by(status))
    return deltas


def _settled_status(*, in_flight: Any, now: Any) -> dict[str, Choose]:
    """SET expressions that complete a started batch when `in_flight` (its count after this
    UPDATE) is 0 and run it again when it is not; other statuses are left as they are."""
    settled = Q(status__in=SETTLED_BY_COUNTERS)
    busy = Q(GreaterThan(in_flight, 0))
    return {
        "status": Choose(
            When(settled & busy, then=Value(BatchStatus.RUNNING)),
            When(settled, then=Value(BatchStatus.COMPLETED)),
            default=F("status"),
        ),
        "finished_at": Choose(
            When(settled & busy, then=Value(None)),
            When(settled & ~Q(status=BatchStatus.COMPLETED), then=Value(now)),
            default=F("finished_at"),
        ),
    }


def batch_counters_move(*, batch_id: int, deltas: Mapping[str, int]) -> None:
    """Add `deltas` ({counter field: change}) to the batch's counters in one UPDATE, which
    settles its status too when the cases in flight change; nothing when no counter changes."""
    changed = {counter: delta for counter, delta in deltas.items() if delta}
    if not changed:
        return
    now = timezone.now()
    settled = {}
    if "in_flight_count" in changed:
        settled = _settled_status(in_flight=F("in_flight_count") + changed["in_flight_count"], now=now)
    GenerationBatch.objects.filter(pk=batch_id).update(
        **{counter: F(counter) + delta for counter, delta in changed.items()}, **settled, updated_at=now
    )


def batch_status_settle(*, batch_id: int) -> None:
    """Complete the batch if none of its cases is in flight (or run it again if one is), by
    its stored counters: after an operation that moves no case (a start, a resume)."""
    now = timezone.now()
    GenerationBatch.objects.filter(pk=batch_id).update(**_settled_status(in_flight=F("in_flight_count"), now=now))


def batch_counters_recount(*, batch_id: int) -> bool:
    """Recount the batch's counters from its cases (selectors.batch_counts) and settle its
    status. Returns whether a stored counter was wrong.

    The batch row is locked before counting, so a delta of a transaction that commits meanwhile
    lands either before the count (which then sees its case) or after it (on top of it)."""
    with transaction.atomic():
        stored = (
            GenerationBatch.objects.select_for_update()
            .filter(pk=batch_id)
            .values("planned_count", "produced_count", "in_flight_count", "failed_count", "approved_count")
            .get()
        )
        counts = selectors.batch_counts(batch_id=batch_id)
        counted = {
            "planned_count": counts.planned,
            "produced_count": counts.produced,
            "in_flight_count": counts.in_flight,
            "failed_count": counts.failed,
            "approved_count": counts.approved,
        }
        GenerationBatch.objects.filter(pk=batch_id).update(**counted, updated_at=timezone.now())
        batch_status_settle(batch_id=batch_id)
    return counted != stored
