"""Long writes (an import, a batch cancel) run as short transactions, so on SQLite a
reviewer's save never waits behind the whole of one (tests/review/datasets/
test_import_beside_reviewers.py runs the real thing with two processes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from generation.models import BatchKind, BatchStatus, Case, CaseStatus, GenerationBatch, PipelineStep, StepStatus
from generation.services.batches import (
    WRITE_CHUNK,
    ImportedPair,
    ImportedText,
    ImportInterrupted,
    batch_cancel,
    imported_batch_create,
)
from tests.factories import CaseFactory, GenerationBatchFactory, IcdCodeFactory


def pair(code, number: int, *, note_text: str = "") -> ImportedPair:
    return ImportedPair(
        code=code,
        note=ImportedText(text=note_text or f"PLAN:\nRest for {number} days.", content={"plan": f"Rest {number}."}),
        dialogue=ImportedText(
            text=f"[doctor]: Rest for {number} days.", content={"turns": [{"speaker": "doctor", "text": "Rest."}]}
        ),
    )


@pytest.mark.django_db(transaction=True)
def test_an_import_is_written_chunk_by_chunk_and_shown_to_reviewers_only_when_complete():
    code = IcdCodeFactory(code="R05.9")
    total = 2 * WRITE_CHUNK + 50
    seen_between_chunks: list[tuple[bool, int, set[str], str]] = []

    def pairs() -> Iterator[ImportedPair]:
        for number in range(total):
            if number and number % WRITE_CHUNK == 0:
                # The writer asks for the next chunk: what would a reviewer's request see now?
                batch = GenerationBatch.objects.get()
                statuses = set(Case.objects.values_list("status", flat=True))
                seen_between_chunks.append((connection.in_atomic_block, Case.objects.count(), statuses, batch.status))
            yield pair(code, number)

    batch = imported_batch_create(name="Import of pairs.csv", pairs=pairs(), config={})

    # Between chunks no transaction is open (SQLite's write lock is free), and what was
    # written waits, planned, in a draft batch: in no review queue yet.
    assert seen_between_chunks == [
        (False, WRITE_CHUNK, {CaseStatus.PLANNED}, BatchStatus.DRAFT),
        (False, 2 * WRITE_CHUNK, {CaseStatus.PLANNED}, BatchStatus.DRAFT),
    ]
    assert (batch.kind, batch.status, batch.planned_count) == (BatchKind.IMPORTED, BatchStatus.COMPLETED, total)
    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.PAIR_REVIEW}
    assert sorted(batch.cases.values_list("slot", flat=True)) == list(range(1, total + 1))
    first = batch.cases.order_by("slot").first()
    assert [(v.kind, v.number, v.source, v.text) for v in first.versions.order_by("kind")] == [
        ("dialogue", 1, "imported", "[doctor]: Rest for 0 days."),
        ("note", 1, "imported", "PLAN:\nRest for 0 days."),
    ]


@pytest.mark.django_db
def test_an_import_that_fails_part_way_cancels_what_it_wrote():
    code = IcdCodeFactory(code="R05.9")
    # The second chunk holds a note longer than any version may be.
    pairs = [pair(code, number) for number in range(WRITE_CHUNK + 10)]
    pairs[WRITE_CHUNK + 5] = pair(code, 0, note_text="x" * 200_001)

    with pytest.raises(ImportInterrupted) as interrupted:
        imported_batch_create(name="Import of pairs.csv", pairs=pairs, config={})

    batch = interrupted.value.batch
    batch.refresh_from_db()
    assert str(interrupted.value) == (
        f"The import stopped after {WRITE_CHUNK} pair(s) (TextTooLong: The note is 200,001 characters long; "
        f"the limit is 200,000. Shorten it and try again.). Its batch {batch.pk} was cancelled: none of its cases "
        "is in a queue or an export. Nothing else changed; import the file again."
    )
    assert batch.status == BatchStatus.CANCELLED
    cases = batch.cases.all()
    assert cases.count() == WRITE_CHUNK
    assert {(case.status, case.error) for case in cases} == {
        (
            CaseStatus.CANCELLED,
            f"The import stopped after {WRITE_CHUNK} pair(s) (TextTooLong: The note is 200,001 characters "
            "long; the limit is 200,000. Shorten it and try again.); this partial import was cancelled.",
        )
    }


@pytest.mark.django_db
def test_cancel_stops_every_open_case_of_a_large_batch_and_leaves_finished_pairs_reviewable():
    batch = GenerationBatchFactory(status=BatchStatus.RUNNING)
    code = IcdCodeFactory()
    planned = [CaseFactory(batch=batch, code=code, slot=n) for n in range(1, WRITE_CHUNK + 60)]
    failed = CaseFactory(batch=batch, code=code, slot=1000, status=CaseStatus.FAILED)
    in_review = CaseFactory(batch=batch, code=code, slot=1001, status=CaseStatus.PAIR_REVIEW)
    waiting = PipelineStep.objects.create(case=failed, agent="note_writer")

    assert batch_cancel(batch=batch) == len(planned) + 1

    assert set(Case.objects.filter(pk__in=[c.pk for c in [*planned, failed]]).values_list("status", flat=True)) == {
        CaseStatus.CANCELLED
    }
    in_review.refresh_from_db()
    waiting.refresh_from_db()
    batch.refresh_from_db()
    assert in_review.status == CaseStatus.PAIR_REVIEW
    assert (waiting.status, waiting.error) == (StepStatus.FAILED, "The batch was cancelled.")
    assert batch.status == BatchStatus.CANCELLED


@pytest.mark.django_db
def test_a_cancel_interrupted_part_way_is_finished_by_the_next_one():
    # The batch's status was written, then the process died before its cases were.
    batch = GenerationBatchFactory(status=BatchStatus.CANCELLED)
    left_open = CaseFactory(batch=batch, status=CaseStatus.NOTE_GENERATING)

    assert batch_cancel(batch=batch) == 1

    left_open.refresh_from_db()
    assert (left_open.status, left_open.error) == (CaseStatus.CANCELLED, "The batch was cancelled.")
