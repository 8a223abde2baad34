"""A batch's stored counters and status, recomputed from its cases."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from generation import selectors
from generation.models import BatchStatus, GenerationBatch


def batch_counters_store(*, batch_id: int) -> selectors.BatchCounts:
    """Store the batch's counters as selectors.batch_counts defines them, so the pages that
    read the stored counters (home, admin) show what the batch page counts live."""
    counts = selectors.batch_counts(batch_id=batch_id)
    GenerationBatch.objects.filter(pk=batch_id).update(
        planned_count=counts.planned,
        produced_count=counts.produced,
        failed_count=counts.failed,
        approved_count=counts.approved,
        updated_at=timezone.now(),
    )
    return counts


def batch_progress_refresh(*, batch_id: int) -> None:
    """Recount a batch and finish it when no case is still planned or generating (or
    reopen it when a case generates again).

    The batch row is locked before counting: when the last two cases of a batch finish at
    once, each transaction would otherwise count the other's case as still generating (on
    PostgreSQL) and the batch would stay running; locked, the second recount waits for the
    first to commit and sees both done."""
    with transaction.atomic():
        list(GenerationBatch.objects.select_for_update().filter(pk=batch_id).values_list("pk"))
        counts = batch_counters_store(batch_id=batch_id)
        active = GenerationBatch.objects.filter(
            pk=batch_id, status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING, BatchStatus.COMPLETED]
        )
        if counts.in_flight:
            active.exclude(status=BatchStatus.RUNNING).update(status=BatchStatus.RUNNING, finished_at=None)
        else:
            active.exclude(status=BatchStatus.COMPLETED).update(
                status=BatchStatus.COMPLETED, finished_at=timezone.now()
            )
