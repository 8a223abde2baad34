"""Pause, resume, cancel and retry of a running batch, as services: what the pipeline
does with the batch's steps, and that a second request does nothing twice."""

from __future__ import annotations

import pytest

from generation.models import (
    AgentCall,
    AgentName,
    ArtefactKind,
    BatchStatus,
    CaseStatus,
    PhysicianRole,
    PipelineStep,
    ReviewStage,
    StepStatus,
)
from generation.services.batches import (
    BatchOperationRefused,
    ImportedPair,
    ImportedText,
    batch_cancel,
    batch_pause,
    batch_resume,
    batch_retry_failed,
    imported_batch_create,
)
from generation.services.pipeline import RegenerationNotAllowed, case_regenerate, case_start, pipeline_step_run
from medsynth_site.celery import app as celery_app
from tests.factories import SAMPLE_DIALOGUE, SAMPLE_NOTE, ClinicianFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import (
    agent_answerer,
    answers,
    make_case,
    make_endpoint,
    run_pending_steps,
    scenario_output,
)
from tests.llm_replay import error_response, llm_replay

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks():
    """Enqueued steps run at once, in this process, as a worker would run them."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _status(batch):
    batch.refresh_from_db()
    return batch.status


def _pending_provider_step(case):
    return case.steps.get(agent=AgentName.SCENARIO_PROVIDER)


# --- Pause -------------------------------------------------------------------------------


def test_a_step_of_a_paused_batch_makes_no_call_and_stays_pending():
    case = make_case()
    step = case_start(case=case)
    assert batch_pause(batch=case.batch) is True

    with llm_replay([]) as replay:  # any request would fail the test
        pipeline_step_run(step_id=step.pk, task_id="message-1")

    step.refresh_from_db()
    assert step.status == StepStatus.PENDING
    assert replay.requests == []
    assert _status(case.batch) == BatchStatus.PAUSED


def test_a_call_in_flight_when_the_batch_is_paused_finishes_and_its_output_is_kept():
    case = make_case()
    step = case_start(case=case)
    answer = agent_answerer()

    def pause_during_the_call(request):
        batch_pause(batch=case.batch)
        return answer(request)

    with llm_replay([pause_during_the_call]):
        pipeline_step_run(step_id=step.pk, task_id="message-1")
        # The judge comes next, but the batch is paused: no call, the step waits.
        judge = case.steps.get(agent=AgentName.SCENARIO_JUDGE)
        pipeline_step_run(step_id=judge.pk, task_id="message-2")

    step.refresh_from_db()
    judge.refresh_from_db()
    assert step.status == StepStatus.SUCCEEDED
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 1
    assert judge.status == StepStatus.PENDING
    assert _status(case.batch) == BatchStatus.PAUSED


def test_pausing_twice_does_nothing_the_second_time_and_a_finished_batch_cannot_be_paused():
    case = make_case()
    case_start(case=case)
    assert batch_pause(batch=case.batch) is True
    assert batch_pause(batch=case.batch) is False

    batch_cancel(batch=case.batch)
    with pytest.raises(BatchOperationRefused, match="The batch is cancelled: only a queued or running batch"):
        batch_pause(batch=case.batch)


def _keep_the_batch_running(case):
    """A second case, still planned, so the batch has work left and stays running."""
    make_case(batch=case.batch, code=IcdCodeFactory(code="I10", description="Essential hypertension", chapter="9"))


def test_a_reviewer_cannot_send_work_to_a_paused_batch():
    case = make_case()
    _keep_the_batch_running(case)
    case_start(case=case)
    with llm_replay(answers(6)):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    batch_pause(batch=case.batch)

    with pytest.raises(RegenerationNotAllowed, match="is paused: an admin resumes it on the batch page first"):
        case_regenerate(case=case, stage=ReviewStage.NOTE, comment="Shorter plan.", requested_by=ClinicianFactory())
    assert not case.steps.filter(agent=AgentName.NOTE_WRITER, attempt=2).exists()


# --- Resume ------------------------------------------------------------------------------


def test_resume_enqueues_the_waiting_steps_and_the_batch_finishes(eager_tasks, django_capture_on_commit_callbacks):
    case = make_case()
    step = case_start(case=case)
    batch_pause(batch=case.batch)
    pipeline_step_run(step_id=step.pk, task_id="dropped-while-paused")

    with llm_replay(answers(6)) as replay, django_capture_on_commit_callbacks(execute=True):
        assert batch_resume(batch=case.batch) == 1

    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert len(replay.chat_requests) == 6
    assert _status(case.batch) == BatchStatus.COMPLETED


def test_resume_starts_the_cases_a_batch_paused_before_it_started(eager_tasks, django_capture_on_commit_callbacks):
    case = make_case()
    case.batch.status = BatchStatus.QUEUED
    case.batch.save(update_fields=["status"])
    batch_pause(batch=case.batch)

    with llm_replay(answers(6)), django_capture_on_commit_callbacks(execute=True):
        assert batch_resume(batch=case.batch) == 0

    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert case.batch.started_at is not None


def test_resuming_a_running_batch_does_nothing_and_a_cancelled_one_is_refused(django_capture_on_commit_callbacks):
    case = make_case()
    case_start(case=case)
    with django_capture_on_commit_callbacks() as enqueued:
        assert batch_resume(batch=case.batch) == 0
    assert enqueued == []
    assert _status(case.batch) == BatchStatus.RUNNING

    batch_cancel(batch=case.batch)
    with pytest.raises(BatchOperationRefused, match="The batch was cancelled; plan a new one instead."):
        batch_resume(batch=case.batch)


# --- Cancel ------------------------------------------------------------------------------


def test_cancel_stops_a_step_before_its_next_attempt_and_keeps_what_was_produced():
    case = make_case()
    step = case_start(case=case)

    def cancel_during_the_call(request):
        batch_cancel(batch=case.batch)
        return error_response(500, "The server had an error")

    # One answer only: a retry after the cancel would fail the test.
    with llm_replay([cancel_during_the_call]) as replay:
        pipeline_step_run(step_id=step.pk, task_id="message-1")

    step.refresh_from_db()
    case.refresh_from_db()
    assert len(replay.requests) == 1
    assert step.status == StepStatus.FAILED
    assert "The batch was cancelled: no further LLM call was made." in step.error
    assert case.status == CaseStatus.CANCELLED
    # The attempt that was made is kept.
    assert AgentCall.objects.filter(step=step, error_kind="server_error").count() == 1


def test_cancel_ends_the_steps_a_pause_held_and_nothing_stays_pending():
    case = make_case()
    step = case_start(case=case)
    batch_pause(batch=case.batch)
    pipeline_step_run(step_id=step.pk, task_id="dropped-while-paused")

    assert batch_cancel(batch=case.batch) == 1
    assert batch_cancel(batch=case.batch) == 0  # a second cancel does nothing

    step.refresh_from_db()
    assert (step.status, step.error) == (StepStatus.FAILED, "The batch was cancelled.")
    assert not PipelineStep.objects.filter(status=StepStatus.PENDING).exists()


def test_output_produced_before_the_cancel_stays():
    case = make_case()
    provider = case_start(case=case)
    with llm_replay(answers(2)):
        pipeline_step_run(step_id=provider.pk, task_id="message-1")
        judge = case.steps.get(agent=AgentName.SCENARIO_JUDGE)
        pipeline_step_run(step_id=judge.pk, task_id="message-2")
    batch_cancel(batch=case.batch)  # the note writer's step waits for a worker
    with llm_replay([]):
        run_pending_steps()

    case.refresh_from_db()
    assert case.status == CaseStatus.CANCELLED
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 1
    writer = case.steps.get(agent=AgentName.NOTE_WRITER)
    assert writer.status == StepStatus.FAILED


# --- Retry failed ------------------------------------------------------------------------


def _failed_case(*, batch_keeps_running=False):
    case = make_case()
    if batch_keeps_running:
        _keep_the_batch_running(case)
    case_start(case=case)
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    return case


def test_a_double_submit_of_retry_failed_does_nothing_the_second_time():
    case = _failed_case()
    seen_up_to = PipelineStep.objects.get(status=StepStatus.FAILED).pk  # what the page showed

    assert batch_retry_failed(batch=case.batch, seen_up_to=seen_up_to) == 1
    # The retried step fails again at once (the provider is still down) ...
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    # ... and the second submit of the same form must not send it back a second time.
    assert batch_retry_failed(batch=case.batch, seen_up_to=seen_up_to) == 0
    assert case.steps.filter(agent=AgentName.SCENARIO_PROVIDER).count() == 2


def test_a_second_retry_while_the_first_runs_finds_nothing_to_do():
    case = _failed_case()
    assert batch_retry_failed(batch=case.batch) == 1
    assert batch_retry_failed(batch=case.batch) == 0
    assert case.steps.filter(agent=AgentName.SCENARIO_PROVIDER).count() == 2


def test_retrying_a_paused_batch_is_refused_until_it_is_resumed():
    case = _failed_case(batch_keeps_running=True)
    batch_pause(batch=case.batch)
    with pytest.raises(BatchOperationRefused, match="The batch is paused: resume it first."):
        batch_retry_failed(batch=case.batch)


# --- A reviewer's regeneration and the batch's status -------------------------------------


def test_a_regeneration_in_an_imported_batch_leaves_it_completed_once_the_pair_is_back():
    make_endpoint(is_default=True)
    code = IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    pair = ImportedPair(
        code=code,
        note=ImportedText(text="Imported note.", content=SAMPLE_NOTE),
        dialogue=ImportedText(text="Imported dialogue.", content=SAMPLE_DIALOGUE),
    )
    batch = imported_batch_create(name="Imported", pairs=[pair], config={})
    case = batch.cases.get()
    assert batch.status == BatchStatus.COMPLETED

    case_regenerate(case=case, stage=ReviewStage.DIALOGUE, comment="Add the HbA1c.", requested_by=ClinicianFactory())
    assert _status(batch) == BatchStatus.RUNNING  # while the agents write
    with llm_replay(answers(2)):
        run_pending_steps()

    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert _status(batch) == BatchStatus.COMPLETED


def test_a_regenerated_stage_back_at_its_gate_leaves_the_batch_completed():
    case = make_case(gates=["note"])
    case_start(case=case)
    with llm_replay(answers(4)):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW
    assert _status(case.batch) == BatchStatus.COMPLETED  # nothing left to generate

    case_regenerate(case=case, stage=ReviewStage.NOTE, comment="Dose per day.", requested_by=ClinicianFactory())
    assert _status(case.batch) == BatchStatus.RUNNING
    with llm_replay(answers(2)):
        run_pending_steps()

    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW
    assert _status(case.batch) == BatchStatus.COMPLETED


def test_the_scenario_provider_writes_for_a_role_an_admin_fixed():
    """StepContext.fixed_role: the provider's own choice of role does not replace it."""
    chosen = PhysicianRole.objects.create(name="Paediatrician")
    case = make_case()
    case.role, case.role_fixed = chosen, True
    case.save(update_fields=["role", "role_fixed"])
    case_start(case=case)
    with llm_replay(answers(6, scenario_provider=scenario_output(role="Cardiologist"))) as replay:
        run_pending_steps()

    case.refresh_from_db()
    assert case.role == chosen
    assert "Paediatrician" in replay.chat_requests[0].prompt_text
