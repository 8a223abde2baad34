"""The recovery pass: which stranded steps and batches it sends again, which it leaves alone,
and that a second pass does nothing twice. Tasks run eagerly, so a step the pass enqueues
runs at once, as a worker would run it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from generation.models import (
    AgentName,
    BatchStatus,
    CaseStatus,
    GenerationBatch,
    PipelineStep,
    StepStatus,
)
from generation.services.batches import batch_plan
from generation.services.pipeline import case_start
from generation.services.pipeline.steps import step_claim
from generation.services.recovery import pipeline_recover
from medsynth_site.celery import app as celery_app
from tests.factories import IcdCodeFactory
from tests.generation.pipeline_fakes import answers, make_batch, make_case
from tests.llm_replay import llm_replay

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(minutes=10)


@pytest.fixture
def eager_tasks():
    """Enqueued steps run at once, in this process, as a worker would run them."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _pending_step(*, batch=None, sent_ago: timedelta | None, created_ago: timedelta = LONG_AGO):
    case = make_case(batch=batch, code=IcdCodeFactory()) if batch else make_case()
    case_start(case=case)
    step = case.steps.get()
    now = timezone.now()
    PipelineStep.objects.filter(pk=step.pk).update(
        created_at=now - created_ago, enqueued_at=None if sent_ago is None else now - sent_ago
    )
    return step


def _running_step(*, lease_left: timedelta, batch=None):
    step = _pending_step(batch=batch, sent_ago=LONG_AGO)
    step_claim(step_id=step.pk, task_id="dead-worker")
    PipelineStep.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() + lease_left)
    return step


def _status(step: PipelineStep) -> str:
    step.refresh_from_db()
    return step.status


def test_a_running_step_whose_lease_expired_is_run_again_and_a_live_one_is_left_alone(
    eager_tasks, django_capture_on_commit_callbacks
):
    orphaned = _running_step(lease_left=-timedelta(seconds=1))
    alive = _running_step(lease_left=timedelta(seconds=30))
    with llm_replay(answers(6)) as replay, django_capture_on_commit_callbacks(execute=True):
        report = pipeline_recover(generation_queue_size=5)

    assert report.taken_over == [orphaned.pk]
    assert _status(orphaned) == StepStatus.SUCCEEDED
    assert _status(alive) == StepStatus.RUNNING
    # The orphan's case went on through its six agents, one call each; the live one made none.
    assert len(replay.chat_requests) == 6
    orphaned.case.refresh_from_db()
    assert orphaned.case.status == CaseStatus.PAIR_REVIEW


def test_a_pending_step_whose_message_never_left_is_sent_after_the_grace_period(eager_tasks):
    never_sent = _pending_step(sent_ago=None)
    just_created = _pending_step(sent_ago=None, created_ago=timedelta(seconds=1))
    with llm_replay(answers(4)):
        report = pipeline_recover(generation_queue_size=7)

    assert report.never_sent == [never_sent.pk]
    assert _status(never_sent) == StepStatus.SUCCEEDED
    assert _status(just_created) == StepStatus.PENDING


def test_a_pending_step_whose_message_was_lost_is_sent_again_only_once_the_queue_is_empty(eager_tasks):
    lost = _pending_step(sent_ago=LONG_AGO)
    recently_sent = _pending_step(sent_ago=timedelta(seconds=5))
    with llm_replay(answers(4)):
        # Messages still wait in the queue: the step's may be one of them.
        assert pipeline_recover(generation_queue_size=3).message_lost == []
        assert pipeline_recover(generation_queue_size=None).message_lost == []
        assert _status(lost) == StepStatus.PENDING

        report = pipeline_recover(generation_queue_size=0)

    assert report.message_lost == [lost.pk]
    assert _status(lost) == StepStatus.SUCCEEDED
    assert _status(recently_sent) == StepStatus.PENDING


def test_the_steps_of_a_paused_batch_are_left_for_its_resume(eager_tasks):
    batch = make_batch()
    pending = _pending_step(batch=batch, sent_ago=LONG_AGO)
    running = _running_step(batch=batch, lease_left=-timedelta(seconds=1))
    GenerationBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PAUSED)
    with llm_replay(answers(2)) as replay:
        report = pipeline_recover(generation_queue_size=0)

    assert not report
    assert replay.chat_requests == []
    assert (_status(pending), _status(running)) == (StepStatus.PENDING, StepStatus.RUNNING)


def test_the_stranded_steps_of_a_cancelled_batch_are_closed_without_a_call(eager_tasks):
    batch = make_batch()
    pending = _pending_step(batch=batch, sent_ago=LONG_AGO)
    running = _running_step(batch=batch, lease_left=-timedelta(seconds=1))
    alive = _running_step(batch=batch, lease_left=timedelta(seconds=30))
    GenerationBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.CANCELLED)
    with llm_replay(answers(2)) as replay:
        report = pipeline_recover(generation_queue_size=0)

    assert report.closed_cancelled == 2
    assert replay.chat_requests == []
    assert (_status(pending), _status(running), _status(alive)) == (
        StepStatus.FAILED,
        StepStatus.FAILED,
        StepStatus.RUNNING,  # its in-flight call finishes; the claim ends it afterwards
    )


def test_a_batch_whose_start_was_lost_is_started(eager_tasks, django_capture_on_commit_callbacks):
    batch = make_batch()
    GenerationBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.QUEUED, created_at=timezone.now() - LONG_AGO)
    batch_plan(batch=batch, codes=[IcdCodeFactory(), IcdCodeFactory()])
    with llm_replay(answers(12)), django_capture_on_commit_callbacks(execute=True):
        report = pipeline_recover(generation_queue_size=0)

    batch.refresh_from_db()
    assert report.batches_started == [batch.pk]
    assert batch.status == BatchStatus.COMPLETED
    assert sorted(batch.cases.values_list("status", flat=True)) == [CaseStatus.PAIR_REVIEW] * 2


def test_a_second_pass_finds_nothing_and_sends_nothing_twice(eager_tasks):
    orphaned = _running_step(lease_left=-timedelta(seconds=1))
    lost = _pending_step(sent_ago=LONG_AGO)
    with llm_replay(answers(12)) as replay:
        first = pipeline_recover(generation_queue_size=0)
        calls_after_first = len(replay.chat_requests)
        second = pipeline_recover(generation_queue_size=0)

    assert (first.taken_over, first.message_lost) == ([orphaned.pk], [lost.pk])
    assert not second
    assert len(replay.chat_requests) == calls_after_first
    for step in (orphaned, lost):
        assert step.case.steps.filter(agent=AgentName.SCENARIO_PROVIDER).count() == 1
        assert step.case.steps.filter(agent=AgentName.SCENARIO_JUDGE).count() == 1


def test_the_command_runs_a_pass_and_reports_what_it_sent(eager_tasks, capsys):
    orphaned = _running_step(lease_left=-timedelta(seconds=1))
    with llm_replay(answers(12)):
        call_command("recover_steps")

    assert f"1 running step(s) whose lease expired [{orphaned.pk}]" in capsys.readouterr().out
    assert _status(orphaned) == StepStatus.SUCCEEDED


def test_the_command_reports_the_steps_a_stopped_worker_was_running(capsys):
    step = _running_step(lease_left=timedelta(seconds=30))
    PipelineStep.objects.filter(pk=step.pk).update(lease_owner=f"{_hostname()}:4242")

    call_command("recover_steps", "--release-worker", "4242")

    assert "1 running step(s) were interrupted; they resume on the next start" in capsys.readouterr().out
    step.refresh_from_db()
    assert step.lease_expires_at <= timezone.now()


def _hostname() -> str:
    import socket

    return socket.gethostname()
