"""Starting a batch: every planned case gets its first step and the latest survey snapshot, which
is looked up once for the whole batch, and the cases are written in chunks of transactions."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import AgentName, CaseStatus, PipelineStep, SurveySnapshot
from generation.services import batches
from generation.services.pipeline import case_start
from tests.factories import CaseFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import make_batch

pytestmark = pytest.mark.django_db


def _planned_batch(cases: int):
    batch = make_batch()
    for n in range(cases):
        code = IcdCodeFactory(code=f"E10.{n}", description="Type 1 diabetes", chapter="4")
        CaseFactory(batch=batch, code=code, role=None, status=CaseStatus.PLANNED)
    return batch


def test_a_batch_start_reads_the_survey_snapshot_once_and_gives_every_case_the_latest(monkeypatch):
    SurveySnapshot.objects.create(version=1, weights={})
    latest = SurveySnapshot.objects.create(version=2, weights={})
    monkeypatch.setattr(batches, "START_CHUNK", 2)  # several chunks for five cases
    batch = _planned_batch(5)
    with CaptureQueriesContext(connection) as captured:
        started = batches.batch_start(batch_id=batch.pk)
    snapshot_reads = [q for q in captured.captured_queries if 'FROM "generation_surveysnapshot"' in q["sql"]]
    assert started == 5
    assert len(snapshot_reads) == 1
    assert set(batch.cases.values_list("status", "survey_snapshot")) == {(CaseStatus.SCENARIO_GENERATING, latest.pk)}
    assert PipelineStep.objects.filter(case__batch=batch, agent=AgentName.SCENARIO_PROVIDER).count() == 5


def test_a_case_another_start_took_first_is_skipped_and_the_others_start(monkeypatch):
    monkeypatch.setattr(batches, "START_CHUNK", 2)
    batch = _planned_batch(3)
    taken = batch.cases.order_by("id")[1]
    start = batches.cases_start

    def taken_meanwhile(**options):  # another start moves the second case on first
        if taken.pk in options["case_ids"]:
            case_start(case=taken)
        return start(**options)

    monkeypatch.setattr(batches, "cases_start", taken_meanwhile)
    assert batches.batch_start(batch_id=batch.pk) == 2
    assert PipelineStep.objects.filter(case__batch=batch).exclude(case=taken).count() == 2
    assert PipelineStep.objects.filter(case=taken).count() == 1  # its own start's, no second one


def test_each_chunk_of_started_cases_sends_its_messages_once_it_commits_and_notes_them_in_one_write(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(batches, "START_CHUNK", 2)
    batch = _planned_batch(5)
    with (
        mock.patch("generation.tasks.run_pipeline_step.apply_async") as send,
        CaptureQueriesContext(connection) as captured,
        django_capture_on_commit_callbacks(execute=True),
    ):
        batches.batch_start(batch_id=batch.pk)
    steps = PipelineStep.objects.filter(case__batch=batch)
    assert sorted(call.args[0][0] for call in send.call_args_list) == sorted(steps.values_list("pk", flat=True))
    assert not steps.filter(enqueued_at__isnull=True).exists()
    notes = [q for q in captured.captured_queries if q["sql"].startswith("UPDATE") and '"enqueued_at"' in q["sql"]]
    assert len(notes) == 3  # chunks of 2, 2 and 1 cases


def test_a_message_the_broker_refuses_leaves_its_step_pending_without_a_time_for_the_recovery_pass(
    django_capture_on_commit_callbacks,
):
    batch = _planned_batch(3)
    refused = batch.cases.order_by("id")[1]

    def send(args, **options):
        if PipelineStep.objects.get(pk=args[0]).case_id == refused.pk:
            raise ConnectionError("broker down")

    with (
        mock.patch("generation.tasks.run_pipeline_step.apply_async", side_effect=send),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert batches.batch_start(batch_id=batch.pk) == 3
    waiting = PipelineStep.objects.filter(case__batch=batch, enqueued_at__isnull=True)
    assert list(waiting.values_list("case_id", flat=True)) == [refused.pk]


@pytest.mark.parametrize("broker_up", [True, False])
def test_a_next_step_is_written_with_its_send_time_and_a_refused_message_leaves_it_unsent(
    broker_up, django_capture_on_commit_callbacks
):
    from generation.services.pipeline.steps import step_create

    case = CaseFactory(status=CaseStatus.NOTE_GENERATING)
    refusal = None if broker_up else ConnectionError("broker down")
    with (
        CaptureQueriesContext(connection) as captured,
        mock.patch("generation.tasks.run_pipeline_step.apply_async", side_effect=refusal) as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        step = step_create(case=case, agent=AgentName.NOTE_WRITER)

    assert send.call_count == 1
    assert send.call_args.args == ((step.pk,),)
    step.refresh_from_db()
    # Sent: noted when written, with no second write; refused: never sent, for the recovery pass.
    assert (step.enqueued_at is not None) is broker_up
    updates = [q for q in captured.captured_queries if q["sql"].startswith("UPDATE") and '"enqueued_at"' in q["sql"]]
    assert len(updates) == (0 if broker_up else 1)
