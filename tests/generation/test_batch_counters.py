"""Each batch counter has one definition: the counters the refresh stores (read by the
home page and the admin) are the ones the batch page counts live."""

from __future__ import annotations

import random
import re

import pytest
from django.db import transaction
from django.urls import reverse

from generation import rendering
from generation.models import (
    CASE_TRANSITIONS,
    ArtefactKind,
    ArtefactVersion,
    BatchKind,
    BatchStatus,
    Case,
    CaseStatus,
    GenerationBatch,
    VersionSource,
)
from generation.services.batch_counters import batch_counters_recount
from generation.services.batches import batch_cancel
from generation.services.cases import artefact_version_create, case_transition, cases_transition
from generation.services.pipeline import case_start
from review import services as review_services
from review.models import ReviewAction
from tests.factories import SAMPLE_DIALOGUE, SAMPLE_NOTE, CaseFactory, GenerationBatchFactory
from tests.generation.pipeline_fakes import make_batch, make_case, run_pending_steps
from tests.llm_replay import error_response, llm_replay
from tests.review.review_fixtures import seen

pytestmark = pytest.mark.django_db


def _imported_batch(*, rows: int) -> GenerationBatch:
    """A batch as the dataset importer leaves it: complete, every case waiting for the
    final pair review with its imported note and dialogue, counted as produced."""
    batch = GenerationBatchFactory(kind=BatchKind.IMPORTED, status=BatchStatus.COMPLETED)
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


# --- The stored counters move by deltas: after any sequence of moves they equal a recount ------

# Written out here rather than imported, so the test counts independently of the code it checks.
_IN_FLIGHT = {"planned", "scenario_generating", "note_generating", "dialogue_generating"}
_FAILED = {"failed", "needs_attention"}
_DELIVERED = {"llm_polished", "regenerated_polished", "imported"}


def _expected_counters(batch: GenerationBatch) -> dict[str, int]:
    statuses = [case.status for case in Case.objects.filter(batch=batch)]
    dialogues = ArtefactVersion.objects.filter(case__batch=batch, kind="dialogue", source__in=_DELIVERED)
    return {
        "planned_count": len(statuses),
        "produced_count": len(set(dialogues.values_list("case_id", flat=True))),
        "in_flight_count": sum(status in _IN_FLIGHT for status in statuses),
        "failed_count": sum(status in _FAILED for status in statuses),
        "approved_count": statuses.count("approved"),
    }


def _stored_counters(batch: GenerationBatch) -> dict[str, int]:
    batch.refresh_from_db()
    return {counter: getattr(batch, counter) for counter in _expected_counters(batch)}


def _random_move(rng: random.Random, batch: GenerationBatch) -> None:
    """One case moved, many moved at once, or a dialogue version written (raw or delivered)."""
    cases = list(Case.objects.filter(batch=batch).order_by("id"))
    case = rng.choice(cases)
    choice = rng.random()
    if choice < 0.15:
        source = rng.choice([VersionSource.LLM_RAW, VersionSource.LLM_POLISHED, VersionSource.REGENERATED_POLISHED])
        artefact_version_create(case=case, kind=ArtefactKind.DIALOGUE, content=SAMPLE_DIALOGUE, source=source)
    elif choice < 0.3:
        to = rng.choice(sorted(CASE_TRANSITIONS[case.status] or {CaseStatus.CANCELLED}))
        current = {status for status, targets in CASE_TRANSITIONS.items() if to in targets}
        some = set(rng.sample(sorted(current), k=min(3, len(current))))
        with transaction.atomic():
            cases_transition(batch_id=batch.pk, current=some, to=to, case_ids=[c.pk for c in rng.sample(cases, 4)])
    elif CASE_TRANSITIONS[case.status]:
        case_transition(case=case, to=rng.choice(sorted(CASE_TRANSITIONS[case.status])))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_stored_counters_equal_a_recount_after_any_sequence_of_moves(seed):
    rng = random.Random(seed)
    batch = make_batch()
    for slot in range(8):
        CaseFactory(batch=batch, slot=slot + 1, status=CaseStatus.PLANNED)
    for _ in range(150):
        _random_move(rng, batch)
        expected = _expected_counters(batch)
        assert _stored_counters(batch) == expected
        assert batch.status == (BatchStatus.RUNNING if expected["in_flight_count"] else BatchStatus.COMPLETED)
    assert not batch_counters_recount(batch_id=batch.pk)  # nothing to heal


def test_the_recount_heals_counters_that_drifted():
    batch = make_batch()
    CaseFactory(batch=batch, status=CaseStatus.PLANNED)
    GenerationBatch.objects.filter(pk=batch.pk).update(in_flight_count=5, failed_count=2)

    assert batch_counters_recount(batch_id=batch.pk)

    assert _stored_counters(batch) == _expected_counters(batch)
    assert not batch_counters_recount(batch_id=batch.pk)


def test_an_admin_recounts_a_batch_from_the_admin_list(admin_client):
    batch = make_batch()
    CaseFactory(batch=batch, status=CaseStatus.FAILED)
    GenerationBatch.objects.filter(pk=batch.pk).update(failed_count=0, in_flight_count=3)

    response = admin_client.post(
        reverse("admin:generation_generationbatch_changelist"),
        {"action": "counters_recount", "_selected_action": [batch.pk]},
        follow=True,
    )

    assert f"counters corrected in: [{batch.pk}]" in response.text
    assert _stored_counters(batch) == _expected_counters(batch)
