"""A running step's lease: who may take a step over, what a run that lost it may store, the
time limit that holds without Celery, and the failures that must not strand a step."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from generation.models import AgentCall, AgentName, ArtefactKind, BatchStatus, CaseStatus, PipelineStep, StepStatus
from generation.services.pipeline import case_start, pipeline_step_run
from generation.services.pipeline.leases import STEP_MAX_RUNS, LeaseKeeper
from generation.services.pipeline.runners import step_run_claimed
from generation.services.pipeline.steps import step_claim, steps_release_worker
from generation.services.recovery import pipeline_recover
from tests.generation.pipeline_fakes import answers, make_case, run_pending_steps
from tests.llm_replay import error_response, llm_replay

pytestmark = pytest.mark.django_db


def _started_case(**config):
    case = make_case(**config)
    case_start(case=case)
    return case, case.steps.get()


def _lease_runs_out(step: PipelineStep) -> None:
    """What time does to the lease of a run whose worker died: nobody renews it."""
    PipelineStep.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_redelivered_message_is_dropped_while_the_runner_lives_and_takes_over_once_its_lease_expired():
    case, step = _started_case()
    first_run = step_claim(step_id=step.pk, task_id="task-1")  # still waiting for the model

    with llm_replay(answers(3)) as replay:
        pipeline_step_run(step_id=step.pk, task_id="task-1")  # Redis hands the same message out again
        step.refresh_from_db()
        assert replay.chat_requests == []
        assert (step.status, step.lease_token) == (StepStatus.RUNNING, first_run.lease_token)

        _lease_runs_out(step)
        pipeline_step_run(step_id=step.pk, task_id="task-1")

    step.refresh_from_db()
    assert len(replay.chat_requests) == 1
    assert (step.status, step.claim_count) == (StepStatus.SUCCEEDED, 2)
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 1
    assert list(case.steps.values_list("agent", "status")) == [
        (AgentName.SCENARIO_PROVIDER, StepStatus.SUCCEEDED),
        (AgentName.SCENARIO_JUDGE, StepStatus.PENDING),
    ]


def test_a_run_that_lost_its_lease_stores_nothing_when_it_wakes_up():
    case, step = _started_case()
    hung_run = step_claim(step_id=step.pk, task_id="task-1")
    _lease_runs_out(step)
    with llm_replay(answers(2)):
        pipeline_step_run(step_id=step.pk, task_id="task-2")  # takes over and finishes
        step_run_claimed(step=hung_run)  # the first run's model call returns at last

    # Its call happened and is on record; its output is not stored and starts nothing.
    assert AgentCall.objects.filter(step=step, error_kind="").count() == 2
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 1
    assert case.steps.filter(agent=AgentName.SCENARIO_JUDGE).count() == 1
    step.refresh_from_db()
    assert step.status == StepStatus.SUCCEEDED


def test_a_run_that_lost_its_lease_does_not_fail_the_step_its_successor_runs():
    case, step = _started_case()
    hung_run = step_claim(step_id=step.pk, task_id="task-1")
    _lease_runs_out(step)
    successor = step_claim(step_id=step.pk, task_id="task-2")
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        step_run_claimed(step=hung_run)

    step.refresh_from_db()
    case.refresh_from_db()
    assert (step.status, step.lease_token) == (StepStatus.RUNNING, successor.lease_token)
    assert case.status == CaseStatus.SCENARIO_GENERATING


def test_the_heartbeat_renews_the_leases_it_holds_until_their_step_overruns_its_time_limit(settings):
    _, step = _started_case()
    _, overrunning = _started_case()
    _, someone_elses = _started_case()
    runs = [step_claim(step_id=each.pk, task_id="t") for each in (step, overrunning, someone_elses)]
    soon = timezone.now() + timedelta(seconds=5)
    PipelineStep.objects.update(lease_expires_at=soon)
    keeper = LeaseKeeper()
    keeper.hold(token=runs[0].lease_token, step_id=step.pk, deadline=time.monotonic() + 600)
    keeper.hold(token=runs[1].lease_token, step_id=overrunning.pk, deadline=time.monotonic() - 1)

    assert keeper.renew() == 1
    leases = dict(PipelineStep.objects.values_list("pk", "lease_expires_at"))
    assert leases[step.pk] >= timezone.now() + timedelta(seconds=settings.PIPELINE_LEASE_SECONDS - 5)
    assert leases[overrunning.pk] == soon
    assert leases[someone_elses.pk] == soon
    # Let go for good: a later beat does not renew it either.
    assert keeper.renew() == 1


def test_no_attempt_starts_that_could_outlast_the_step_time_limit(settings):
    settings.PIPELINE_STEP_TIME_LIMIT = 30  # below the endpoint's 120 s client timeout
    case, step = _started_case()
    with llm_replay(answers(1)) as replay:
        run_pending_steps()

    step.refresh_from_db()
    case.refresh_from_db()
    assert replay.chat_requests == []
    assert step.status == StepStatus.FAILED
    assert "time limit (PIPELINE_STEP_TIME_LIMIT=30 s)" in step.error
    assert case.status == CaseStatus.FAILED


def test_a_bad_batch_configuration_fails_the_step_and_the_case_instead_of_stranding_them():
    case, step = _started_case(temperatures={"scenario_provider": "hot"})
    with llm_replay(answers(1)) as replay:
        pipeline_step_run(step_id=step.pk, task_id="task-1")

    step.refresh_from_db()
    case.refresh_from_db()
    assert replay.chat_requests == []
    assert step.status == StepStatus.FAILED
    assert step.error.startswith("the batch's configuration is invalid: ValueError")
    assert case.status == CaseStatus.FAILED


def _refuse_batch_updates() -> None:
    """Make every write to a batch row fail, as a lock timeout or a broken counter would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_batch_update() RETURNS trigger AS "
                "$$ BEGIN RAISE EXCEPTION 'batch row refused by the test'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_batch_update BEFORE UPDATE ON generation_generationbatch "
                "FOR EACH ROW EXECUTE FUNCTION refuse_batch_update()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_batch_update BEFORE UPDATE ON generation_generationbatch "
                "BEGIN SELECT RAISE(ABORT, 'batch row refused by the test'); END"
            )


def _allow_batch_updates() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER refuse_batch_update"
            + (" ON generation_generationbatch" if connection.vendor == "postgresql" else "")
        )


def test_an_error_while_recording_a_failure_still_ends_the_step_and_the_recovery_pass_recounts_the_batch():
    case, step = _started_case()
    _refuse_batch_updates()
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        pipeline_step_run(step_id=step.pk, task_id="task-1")

    step.refresh_from_db()
    case.refresh_from_db()
    assert step.status == StepStatus.FAILED
    assert "does not exist" in step.error
    assert case.status == CaseStatus.FAILED
    assert case.batch.status == BatchStatus.RUNNING  # its recount was refused

    _allow_batch_updates()
    report = pipeline_recover(generation_queue_size=0)
    case.batch.refresh_from_db()
    assert report.batches_recounted == [case.batch_id]
    assert (case.batch.status, case.batch.failed_count) == (BatchStatus.COMPLETED, 1)


def test_a_step_interrupted_too_often_fails_instead_of_running_again():
    case, step = _started_case()
    PipelineStep.objects.filter(pk=step.pk).update(status=StepStatus.RUNNING, claim_count=STEP_MAX_RUNS)
    _lease_runs_out(step)
    with llm_replay(answers(1)) as replay:
        pipeline_step_run(step_id=step.pk, task_id="task-9")

    step.refresh_from_db()
    case.refresh_from_db()
    assert replay.chat_requests == []
    assert step.status == StepStatus.FAILED
    assert step.error == f"the step was interrupted {STEP_MAX_RUNS} times; it is not run again"
    assert case.status == CaseStatus.FAILED


def test_a_stopped_worker_releases_the_steps_it_was_running_and_only_those():
    _, mine = _started_case()
    _, elsewhere = _started_case()
    step_claim(step_id=mine.pk, task_id="t")
    step_claim(step_id=elsewhere.pk, task_id="t")
    PipelineStep.objects.filter(pk=mine.pk).update(lease_owner="worker-host:4242")

    assert steps_release_worker(owner="worker-host:4242") == 1
    mine.refresh_from_db()
    elsewhere.refresh_from_db()
    assert mine.lease_expires_at <= timezone.now()
    assert elsewhere.lease_expires_at > timezone.now()
