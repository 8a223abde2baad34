from __future__ import annotations

import pytest

from generation.models import AgentName, BatchStatus, Case, CaseStatus, GenerationBatch, PipelineStep
from generation.services import batches as batches_module
from generation.services.batches import (
    BatchPlanError,
    BatchRequest,
    ImportedPair,
    ImportedText,
    batch_cancel,
    batch_create,
    batch_plan,
    batch_start,
    imported_batch_create,
)
from tests.factories import CaseFactory, IcdCodeFactory, LlmEndpointFactory, LlmModelFactory
from tests.llm_replay import llm_replay, models_response

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint():
    endpoint = LlmEndpointFactory(name="lab", default_model="test-model")
    LlmModelFactory(endpoint=endpoint, name="test-model")
    return endpoint


@pytest.fixture
def codes():
    return [
        IcdCodeFactory(
            code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4", frequency=900
        ),
        IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9", frequency=1200),
        IcdCodeFactory(code="J02.9", description="Acute pharyngitis, unspecified", chapter="10", frequency=50),
    ]


def _nothing_created():
    return not GenerationBatch.objects.exists()


def test_it_plans_codes_times_pairs_and_starts_each_case(endpoint, codes):
    with llm_replay([models_response(["test-model"])]):
        batch = batch_create(request=BatchRequest(codes=["e119", " I10 "], pairs_per_code=2, endpoint_name="lab"))

    assert batch.planned_count == 4
    assert sorted(batch.cases.values_list("code__code", "slot")) == [("E11.9", 1), ("E11.9", 2), ("I10", 1), ("I10", 2)]
    assert batch_start(batch_id=batch.pk) == 4
    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.SCENARIO_GENERATING}
    assert PipelineStep.objects.filter(case__batch=batch, agent=AgentName.SCENARIO_PROVIDER).count() == 4
    batch.refresh_from_db()
    assert batch.status == "running"


def test_top_n_takes_the_most_frequent_codes_and_planning_again_adds_nothing(endpoint, codes):
    with llm_replay([models_response(["test-model"])]):
        batch = batch_create(request=BatchRequest(top=2, pairs_per_code=3, endpoint_name="lab"))

    assert sorted(set(batch.cases.values_list("code__code", flat=True))) == ["E11.9", "I10"]
    assert batch_plan(batch=batch, codes=[codes[0], codes[1]]) == 6
    assert batch.cases.count() == 6


def test_an_unknown_code_is_refused_before_anything_is_created(endpoint, codes):
    with pytest.raises(BatchPlanError, match=r"Unknown ICD-10-CM code\(s\): Q99.99X"):
        batch_create(request=BatchRequest(codes=["E11.9", "Q99.99X"], endpoint_name="lab"))
    assert _nothing_created()


def test_an_endpoint_whose_key_variable_is_unset_is_refused(monkeypatch, codes):
    monkeypatch.delenv("TEST_MISSING_API_KEY", raising=False)
    LlmEndpointFactory(name="keyless", api_key_env="TEST_MISSING_API_KEY")
    with pytest.raises(BatchPlanError, match="TEST_MISSING_API_KEY"):
        batch_create(request=BatchRequest(codes=["I10"], endpoint_name="keyless"))
    assert _nothing_created()


def test_a_model_the_endpoint_does_not_serve_is_refused(endpoint, codes):
    with llm_replay([models_response(["some-other-model"])]), pytest.raises(BatchPlanError, match="not served"):
        batch_create(request=BatchRequest(codes=["I10"], endpoint_name="lab", model="gpt-imaginary"))
    assert _nothing_created()


def test_bad_settings_are_refused(endpoint, codes):
    with pytest.raises(BatchPlanError, match="Unknown LLM endpoint 'nope'"):
        batch_create(request=BatchRequest(codes=["I10"], endpoint_name="nope"))
    with pytest.raises(BatchPlanError, match="review gate"):
        batch_create(request=BatchRequest(codes=["I10"], endpoint_name="lab", gates=["final"]))
    IcdCodeFactory(code="A00.0", chapter="1", frequency=None)
    with pytest.raises(BatchPlanError, match="frequencies"):
        batch_create(request=BatchRequest(top=5, chapter="1", endpoint_name="lab"))
    assert _nothing_created()


def test_cancelling_a_batch_stops_its_open_cases(endpoint, codes):
    with llm_replay([models_response(["test-model"])]):
        batch = batch_create(request=BatchRequest(codes=["I10"], pairs_per_code=2, endpoint_name="lab"))
    batch_start(batch_id=batch.pk)
    assert batch_cancel(batch=batch) == 2
    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.CANCELLED}
    assert batch.status == "cancelled"


def _imported_pair(code) -> ImportedPair:
    unparsed = {"code": "unparsed", "message": "Text before the first heading.", "detail": None}
    return ImportedPair(
        code=code,
        note=ImportedText(text="Seen today.\nS: cough", content={"subjective": "cough"}, flags=[unparsed]),
        dialogue=ImportedText(text="[doctor]: hi", content={"turns": [{"speaker": "doctor", "text": "hi"}]}),
    )


def test_an_imported_batch_puts_every_pair_in_the_final_review(codes):
    diabetes, hypertension = codes[0], codes[1]

    batch = imported_batch_create(
        name="Import of pairs.csv",
        pairs=[_imported_pair(diabetes), _imported_pair(diabetes), _imported_pair(hypertension)],
        config={"import": {"format": "medsynth"}},
    )

    counters = (batch.planned_count, batch.produced_count, batch.approved_count, batch.failed_count)
    assert (batch.kind, batch.status, counters) == ("imported", "completed", (3, 3, 0, 0))
    assert list(batch.cases.order_by("id").values_list("code__code", "slot", "status")) == [
        ("E11.9", 1, "pair_review"),
        ("E11.9", 2, "pair_review"),
        ("I10", 1, "pair_review"),
    ]
    note = batch.cases.order_by("id").first().versions.get(kind="note")
    assert (note.number, note.source, note.text) == (1, "imported", "Seen today.\nS: cough")
    assert note.check_flags[0]["code"] == "unparsed"


def test_a_top_up_batch_plans_each_code_s_missing_pairs(endpoint, codes):
    e11, i10, _ = codes
    CaseFactory(code=e11, status=CaseStatus.APPROVED)
    CaseFactory(code=i10, status=CaseStatus.APPROVED)
    CaseFactory(code=i10, status=CaseStatus.NOTE_GENERATING)
    # Target 3: E11.9 lacks 2, I10 lacks 1, J02.9 all 3.
    with llm_replay([models_response(["test-model"])]):
        request = BatchRequest(codes=["E11.9", "I10", "J02.9"], target_approved=3, endpoint_name="lab")
        batch = batch_create(request=request)
    planned = sorted(batch.cases.values_list("code__code", "slot"))
    assert planned == [("E11.9", 1), ("E11.9", 2), ("I10", 1), ("J02.9", 1), ("J02.9", 2), ("J02.9", 3)]
    assert batch.config["pairs_by_code"] == {"E11.9": 2, "I10": 1, "J02.9": 3}
    assert batch.name == "E11.9, I10, J02.9: top-up to 3 approved"


def test_a_top_up_with_nothing_missing_is_refused(endpoint, codes):
    CaseFactory(code=codes[1], status=CaseStatus.APPROVED)
    with pytest.raises(BatchPlanError, match="Nothing to top up: every chosen code has 1 approved"):
        batch_create(request=BatchRequest(codes=["I10"], target_approved=1, endpoint_name="lab"))
    assert GenerationBatch.objects.count() == 1  # only the factory's batch


def test_a_plan_that_stops_part_way_cancels_what_it_wrote_with_counters_that_add_up(endpoint, codes, monkeypatch):
    monkeypatch.setattr(batches_module, "PLAN_CHUNK", 1)
    insert = Case.objects.bulk_create
    inserts = []

    def second_insert_fails(rows, **options):
        inserts.append(rows)
        if len(inserts) == 2:
            raise RuntimeError("disk full")
        return insert(rows, **options)

    monkeypatch.setattr(Case.objects, "bulk_create", second_insert_fails)
    with llm_replay([models_response(["test-model"])]), pytest.raises(RuntimeError, match="disk full"):
        batch_create(request=BatchRequest(codes=["E11.9", "I10"], endpoint_name="lab"))

    batch = GenerationBatch.objects.get()
    assert batch.status == BatchStatus.CANCELLED
    assert list(batch.cases.values_list("status", flat=True)) == [CaseStatus.CANCELLED]
    counters = (batch.planned_count, batch.in_flight_count, batch.failed_count, batch.approved_count)
    assert counters == (1, 0, 0, 0)
