from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import (
    AgentCall,
    AgentName,
    ArtefactKind,
    CaseStatus,
    InvalidTransition,
    PipelineStep,
    StepStatus,
    SurveySnapshot,
    VersionSource,
)
from generation.services.batches import batch_retry_failed
from generation.services.cases import artefact_version_create, case_transition
from generation.services.pipeline import (
    AdvanceNotAllowed,
    RegenerationNotAllowed,
    RetryNotAllowed,
    case_advance_after_review,
    case_finish,
    case_regenerate,
    case_retry,
    case_start,
    pipeline_step_run,
)
from generation.services.pipeline.config import pipeline_config
from generation.tasks import run_pipeline_step
from review import services as review_services
from tests.factories import ClinicianFactory, GenerationBatchFactory, LlmEndpointFactory
from tests.generation.pipeline_fakes import (
    agent_of,
    answers,
    judge_output,
    make_case,
    run_pending_steps,
    scenario_output,
)
from tests.llm_replay import error_response, llm_replay
from tests.review.review_fixtures import seen

pytestmark = pytest.mark.django_db


def _requests_of(replay, agent):
    return [request for request in replay.chat_requests if agent_of(request) == agent]


def test_a_case_runs_through_all_six_agents_to_final_pair_review():
    case = make_case()
    case_start(case=case)
    with llm_replay(answers(6)) as replay:
        run_pending_steps()

    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert [agent_of(request) for request in replay.chat_requests] == [
        "scenario_provider",
        "scenario_judge",
        "note_writer",
        "note_polisher",
        "dialogue_generator",
        "dialogue_polisher",
    ]
    sources = list(case.versions.order_by("kind", "number").values_list("kind", "source"))
    assert sources == [
        ("dialogue", VersionSource.LLM_RAW),
        ("dialogue", VersionSource.LLM_POLISHED),
        ("note", VersionSource.LLM_RAW),
        ("note", VersionSource.LLM_POLISHED),
        ("scenario", VersionSource.LLM_RAW),
    ]
    # The role came back in markdown and odd case; it is resolved to the table's role.
    assert case.role.name == "Family medicine physician"
    assert AgentCall.objects.filter(case=case, error_kind="").count() == 6
    case.batch.refresh_from_db()
    assert (case.batch.produced_count, case.batch.status) == (1, "completed")


def test_planning_and_reasoning_never_reach_the_released_texts():
    case = make_case()
    case_start(case=case)
    with llm_replay(answers(6)):
        run_pending_steps()

    for version in case.versions.all():
        assert "planning" not in version.content
        assert "Plan the note around the scenario" not in version.text
        assert "Open with the complaint" not in version.text
    writer_step = case.steps.get(agent=AgentName.NOTE_WRITER)
    assert writer_step.result["planning"] == "Plan the note around the scenario."
    dialogue = case.versions.filter(kind=ArtefactKind.DIALOGUE).last()
    assert dialogue.text.startswith("[doctor]: What brings you in? (polished)\n[patient]:")


def test_the_dialogue_generator_is_given_the_polished_note():
    case = make_case()
    case_start(case=case)
    with llm_replay(answers(6)) as replay:
        run_pending_steps()

    (prompt,) = [request.prompt_text for request in _requests_of(replay, "dialogue_generator")]
    assert "(polished plan)" in prompt
    assert "(raw plan)" not in prompt
    polished = case.versions.get(kind=ArtefactKind.NOTE, source=VersionSource.LLM_POLISHED)
    assert case.steps.get(agent=AgentName.DIALOGUE_GENERATOR).result["note_version_id"] == polished.pk


def test_the_survey_weights_are_in_the_provider_and_note_writer_prompts():
    snapshot = SurveySnapshot.objects.create(
        version=3, weights={"investigations": 9.6, "medical_outcome": 8.2, "geographical_location": 4.1}
    )
    case = make_case()
    case_start(case=case)
    with llm_replay(answers(6)) as replay:
        run_pending_steps()

    case.refresh_from_db()
    assert case.survey_snapshot == snapshot
    for agent in ("scenario_provider", "note_writer"):
        prompt = _requests_of(replay, agent)[0].messages[-1]["content"]
        assert "survey v3" in prompt
        assert "Investigation and test results (weight 9.6) [PRIORITY" in prompt
        assert "Geographical location (weight 4.1)\n" in prompt or "Geographical location (weight 4.1):" in prompt
        # Ranked by weight: the most important variable comes first.
        assert (
            prompt.index("Investigation and test results")
            < prompt.index("Medical outcome")
            < prompt.index("Geographical location")
        )


def test_judge_rejections_are_capped_and_the_case_needs_attention_with_every_attempt_kept():
    case = make_case(max_scenario_revisions=2)
    case_start(case=case)
    rejection = judge_output(approved=False, reason="Metformin is contraindicated at this eGFR.")
    with llm_replay(answers(6, scenario_judge=rejection)) as replay:
        run_pending_steps()

    case.refresh_from_db()
    assert case.status == CaseStatus.NEEDS_ATTENTION
    assert case.scenario_revisions == 3
    assert "rejected the scenario 3 times" in case.error
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 3
    assert case.steps.filter(agent=AgentName.SCENARIO_PROVIDER).count() == 3
    # The judge's reasons are fed to the provider's revision.
    revision_prompt = _requests_of(replay, "scenario_provider")[1].prompt_text
    assert "Metformin is contraindicated at this eGFR." in revision_prompt
    assert "Your previous scenario" in revision_prompt
    assert not case.steps.filter(agent=AgentName.NOTE_WRITER).exists()


def test_a_near_duplicate_of_an_approved_scenario_is_rejected_without_an_llm_call():
    first = make_case()
    case_start(case=first)
    with llm_replay(answers(6)):
        run_pending_steps()
    first.refresh_from_db()
    case_transition(case=first, to=CaseStatus.APPROVED)

    second = make_case(batch=first.batch, code=first.code)
    case_start(case=second)
    revised = scenario_output(theme="insulin glargine for a pregnant farm worker in rural Iowa")
    with llm_replay(answers(7, scenario_provider=[scenario_output(), revised])) as replay:
        run_pending_steps()

    judge_steps = second.steps.filter(agent=AgentName.SCENARIO_JUDGE).order_by("attempt")
    assert judge_steps[0].result["near_duplicate"] is True
    assert judge_steps[0].result["similarity"] > 0.99
    assert not AgentCall.objects.filter(step=judge_steps[0]).exists()
    # One judge call only: for the revised, different scenario.
    assert len(_requests_of(replay, "scenario_judge")) == 1
    assert "near duplicate" in _requests_of(replay, "scenario_provider")[1].prompt_text
    second.refresh_from_db()
    assert second.status == CaseStatus.PAIR_REVIEW


def test_a_redelivered_step_task_does_nothing_the_second_time():
    case = make_case()
    case_start(case=case)
    step = case.steps.get()
    with llm_replay(answers(1)) as replay:
        run_pipeline_step.apply(args=[step.pk])
        run_pipeline_step.apply(args=[step.pk])

    assert len(replay.chat_requests) == 1
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 1
    assert AgentCall.objects.filter(step=step, error_kind="").count() == 1
    step.refresh_from_db()
    assert step.status == StepStatus.SUCCEEDED


def test_an_llm_error_fails_the_step_and_the_case_with_the_reason():
    case = make_case()
    case_start(case=case)
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()

    case.refresh_from_db()
    step = case.steps.get()
    assert (case.status, step.status) == (CaseStatus.FAILED, StepStatus.FAILED)
    assert "does not exist" in case.error
    assert (
        case.batch.__class__.objects.get(pk=case.batch_pk if hasattr(case, "batch_pk") else case.batch_id).failed_count
        == 1
    )


def _case_in_pair_review(**config):
    case = make_case(**config)
    case_start(case=case)
    with llm_replay(answers(6)):
        run_pending_steps()
    case.refresh_from_db()
    return case


def test_regenerating_the_note_puts_the_comment_in_the_prompt_and_regenerates_the_dialogue():
    case = _case_in_pair_review()
    reviewer = ClinicianFactory()
    step = case_regenerate(case=case, stage="note", comment="Document the foot examination.", requested_by=reviewer)

    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_GENERATING
    assert (step.agent, step.attempt, step.requested_by) == (AgentName.NOTE_WRITER, 2, reviewer)
    with llm_replay(answers(4)) as replay:
        run_pending_steps()

    writer_prompt = _requests_of(replay, "note_writer")[0].prompt_text
    assert "Document the foot examination." in writer_prompt
    assert "Your previous note" in writer_prompt
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    notes = list(case.versions.filter(kind=ArtefactKind.NOTE).order_by("number").values_list("source", flat=True))
    assert notes == ["llm_raw", "llm_polished", "regenerated", "regenerated_polished"]
    dialogues = list(
        case.versions.filter(kind=ArtefactKind.DIALOGUE).order_by("number").values_list("source", flat=True)
    )
    assert dialogues == ["llm_raw", "llm_polished", "regenerated", "regenerated_polished"]


def test_the_version_a_reviewer_gets_back_from_regenerate_is_labelled_regenerated(clinician, clinician_client):
    case = _case_in_pair_review()
    review_services.regeneration_request(
        case=case,
        reviewer=clinician,
        target="dialogue",
        comment="Let the patient ask about side effects.",
        seen=seen(case),
        opened_at=None,
    )
    with llm_replay(answers(2)):
        run_pending_steps()

    page = clinician_client.get(f"{reverse('review:item', args=[case.pk])}?queue=pair").content.decode()
    # Dialogue v1 raw, v2 polished, v3 the regeneration's raw output, v4 its polished one.
    assert "v4 · Regenerated (polished)" in page
    assert "v4 · LLM (polished)" not in page


def test_a_final_verdict_finishes_the_case_and_counts_it_in_its_batch():
    case = _case_in_pair_review()
    with pytest.raises(InvalidTransition, match="not a final verdict"):
        case_finish(case=case, status=CaseStatus.CANCELLED)

    case_finish(case=case, status=CaseStatus.APPROVED)

    case.refresh_from_db()
    case.batch.refresh_from_db()
    assert (case.status, case.batch.approved_count) == (CaseStatus.APPROVED, 1)


def test_regeneration_is_refused_while_the_stage_is_being_generated():
    case = make_case()
    case_start(case=case)
    with pytest.raises(RegenerationNotAllowed, match="cannot be regenerated now"):
        case_regenerate(case=case, stage="scenario", comment="Older patient", requested_by=None)
    with pytest.raises(RegenerationNotAllowed, match="Unknown stage"):
        case_regenerate(case=case, stage="poem", comment="", requested_by=None)
    assert case.steps.count() == 1


def test_a_gated_case_waits_for_review_then_continues_when_approved():
    case = make_case(gates=["scenario"])
    case_start(case=case)
    with llm_replay(answers(2)):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.SCENARIO_REVIEW
    assert not case.steps.filter(agent=AgentName.NOTE_WRITER).exists()

    case_advance_after_review(case=case)
    with llm_replay(answers(4)):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    with pytest.raises(AdvanceNotAllowed):
        case_advance_after_review(case=case)


def test_a_human_edited_note_at_the_note_gate_is_what_the_dialogue_is_written_from():
    case = make_case(gates=["note"])
    case_start(case=case)
    with llm_replay(answers(4)):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW
    edited = dict(case.versions.filter(kind=ArtefactKind.NOTE).last().content, plan="Insulin glargine 10 units.")
    artefact_version_create(
        case=case, kind=ArtefactKind.NOTE, content=edited, source=VersionSource.HUMAN_EDIT, author=ClinicianFactory()
    )
    case_advance_after_review(case=case)
    with llm_replay(answers(2)) as replay:
        run_pending_steps()
    assert "Insulin glargine 10 units." in _requests_of(replay, "dialogue_generator")[0].prompt_text
    assert PipelineStep.objects.filter(case=case, status=StepStatus.SUCCEEDED).count() == 6


def test_on_the_local_demo_model_the_judge_only_runs_the_near_duplicate_check():
    case = make_case()
    case.batch.endpoint.is_local_demo = True
    case.batch.endpoint.save()
    case_start(case=case)
    with llm_replay(answers(5)) as replay:
        run_pending_steps()

    assert "scenario_judge" not in [agent_of(request) for request in replay.chat_requests]
    assert case.steps.get(agent=AgentName.SCENARIO_JUDGE).result["judge_mode"] == "similarity"
    # The demo model gets bounded outputs and one worked example.
    provider_request = _requests_of(replay, "scenario_provider")[0]
    assert provider_request.json["max_tokens"] == 1024
    assert provider_request.prompt_text.count("Worked example") == 1
    # Gemma's chat template has no system role: the instructions lead the user turn.
    assert [m["role"] for m in provider_request.messages] == ["user"]
    assert provider_request.messages[0]["content"].startswith("You are the Scenario Provider")
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW


def test_a_failed_case_is_retried_from_its_failed_step():
    case = make_case()
    case_start(case=case)
    provider_then_outage = [answers(1)[0], error_response(404, "The model `test-model` does not exist")]
    with llm_replay(provider_then_outage):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED

    assert batch_retry_failed(batch=case.batch) == 1
    case.refresh_from_db()
    assert case.status == CaseStatus.SCENARIO_GENERATING
    retry = case.steps.get(status=StepStatus.PENDING)
    assert (retry.agent, retry.attempt) == (AgentName.SCENARIO_JUDGE, 2)
    with llm_replay(answers(5)) as replay:
        run_pending_steps()
    assert agent_of(replay.chat_requests[0]) == "scenario_judge"
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 1
    with pytest.raises(RetryNotAllowed, match="not failed"):
        case_retry(case=case)


def test_a_role_the_model_invents_falls_back_to_primary_care_and_is_recorded():
    case = make_case()
    case_start(case=case)
    with llm_replay(answers(1, scenario_provider=scenario_output(role="astronaut"))):
        pipeline_step_run(step_id=case.steps.get().pk)

    case.refresh_from_db()
    assert case.role.name == "Family medicine physician"
    assert case.versions.get(kind=ArtefactKind.SCENARIO).content["role"] == "Family medicine physician"
    assert case.steps.get(agent=AgentName.SCENARIO_PROVIDER).result["role_returned"] == "astronaut"


def test_a_batch_without_its_own_endpoint_gets_the_default_endpoints_demo_settings():
    """An imported batch has no endpoint; its regenerations go to the default endpoint, and
    when that is the local demo model they must get the demo's bounded settings too."""
    LlmEndpointFactory(name="local-demo", is_default=True, is_active=True, is_local_demo=True)
    batch = GenerationBatchFactory(endpoint=None)

    config = pipeline_config(batch=batch)

    assert config.judge_mode == "similarity"
    assert config.max_tokens["note_writer"] == 1024
    assert config.examples_per_prompt == 1
