"""Each batch counter has one definition: the counters the refresh stores (read by the
home page and the admin) are the ones the batch page counts live."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from generation import rendering
from generation.models import ArtefactKind, BatchKind, BatchStatus, CaseStatus, GenerationBatch, VersionSource
from generation.services.batches import batch_cancel
from generation.services.cases import artefact_version_create
from generation.services.pipeline import case_start
from review import services as review_services
from review.models import ReviewAction
from tests.factories import SAMPLE_DIALOGUE, SAMPLE_NOTE, CaseFactory, GenerationBatchFactory
from tests.generation.pipeline_fakes import make_case, run_pending_steps
from tests.llm_replay import error_response, llm_replay
from tests.review.review_fixtures import seen

pytestmark = pytest.mark.django_db


def _imported_batch(*, rows: int) -> GenerationBatch:
    """A batch as the dataset importer leaves it: complete, every case waiting for the
    final pair review with its imported note and dialogue, counted as produced."""
    batch = GenerationBatchFactory(
        kind=BatchKind.IMPORTED, status=BatchStatus.COMPLETED, planned_count=rows, produced_count=rows
    )
    for _ in range(rows):
        case = CaseFactory(batch=batch, status=CaseStatus.PAIR_REVIEW)
        for kind, content in ((ArtefactKind.NOTE, SAMPLE_NOTE), (ArtefactKind.DIALOGUE, SAMPLE_DIALOGUE)):
            text = rendering.render(kind, content)
            artefact_version_create(case=case, kind=kind, content=content, source=VersionSource.IMPORTED, text=text)
    return batch


def _batch_page_text(client, batch: GenerationBatch) -> str:
    page = client.get(reverse("generation:batch-detail", args=[batch.pk])).text
    return " ".join(page.replace("<strong>", "").replace("</strong>", "").split())


def _home_row(client, batch: GenerationBatch) -> list[int]:
    """Planned, produced and approved as the home page's batch table shows them."""
    page = client.get(reverse("home")).text
    row = next(row for row in page.split("<tr>") if batch.name in row)
    return [int(number) for number in re.findall(r'<td class="num">(\d+)</td>', row)]


def test_an_imported_batch_stays_produced_after_a_review_decision(clinician, admin_member_client):
    batch = _imported_batch(rows=3)
    first = batch.cases.order_by("id").first()

    review_services.review_decision_record(
        case=first, reviewer=clinician, action=ReviewAction.APPROVE, seen=seen(first), opened_at=None
    )

    batch.refresh_from_db()
    assert (batch.planned_count, batch.produced_count, batch.approved_count) == (3, 3, 1)
    assert _home_row(admin_member_client, batch) == [3, 3, 1]
    page = _batch_page_text(admin_member_client, batch)
    assert "3 of 3 cases settled · 3 produced · 0 failed" in page
    assert '<th scope="row">Approved</th><td class="num">1</td>' in page


def test_cancelling_a_batch_recounts_what_the_home_page_shows(admin_member_client):
    case = make_case()
    case_start(case=case)
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()
    case.batch.refresh_from_db()
    assert case.batch.failed_count == 1

    batch_cancel(batch=case.batch)

    assert case.batch.failed_count == 0  # the failed case is cancelled now
    assert "0 failed" in _batch_page_text(admin_member_client, case.batch)
