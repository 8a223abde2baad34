"""Provider Batch API mode against a local fake Batch API server (tests/fake_batch_api_server.py):
submission, polling, ingestion through the realtime code path, per-line failures, expiry,
a killed worker, cancellation, regeneration and gates."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from generation import provider_batch_selectors
from generation.forms import BatchLaunchForm
from generation.models import (
    AgentCall,
    AgentName,
    ArtefactVersion,
    BatchStatus,
    Case,
    CaseStatus,
    ExecutionMode,
    GenerationBatch,
    LineStatus,
    PipelineStep,
    ProviderBatch,
    ProviderBatchStatus,
    StepStatus,
)
from generation.services.batches import (
    BatchPlanError,
    BatchRequest,
    batch_cancel,
    batch_create,
    batch_pause,
    batch_resume,
)
from generation.services.pipeline import case_regenerate, case_start, provider_batches
from generation.services.pipeline.runners import pipeline_step_run
from generation.services.pipeline.runners import scenario as scenario_runner
from tests.factories import (
    CaseFactory,
    GenerationBatchFactory,
    IcdCodeFactory,
    LlmEndpointFactory,
    LlmModelFactory,
    UserFactory,
)
from tests.fake_batch_api_server import FakeBatchApiServer, fake_batch_api_server
from tests.generation.pipeline_fakes import run_pending_steps

pytestmark = pytest.mark.django_db

SIX_AGENTS = [agent.value for agent in AgentName]


@pytest.fixture
def server():
    with fake_batch_api_server() as fake:
        yield fake


def batch_on(
    server: FakeBatchApiServer,
    *,
    execution: str,
    cases: int = 2,
    prices: dict[str, Decimal] | None = None,
    **config: Any,
) -> GenerationBatch:
    endpoint = LlmEndpointFactory(base_url=server.base_url, default_model="test-model", supports_batch_api=True)
    LlmModelFactory(endpoint=endpoint, name="test-model", **(prices or {}))
    settings = {"execution": execution, "batch_flush_lines": cases, "batch_flush_seconds": 3600, **config}
    batch = GenerationBatchFactory(endpoint=endpoint, model="test-model", config=settings, status=BatchStatus.RUNNING)
    for number in range(cases):
        # One code per case: the judge's near-duplicate check compares scenarios of one code.
        code = IcdCodeFactory(code=f"E1{number}.9", description=f"Diabetes type {number}", chapter="4")
        case = CaseFactory(batch=batch, code=code, slot=1, role=None)
        case_start(case=case)
    return batch


def run_until_settled(*, rounds: int = 30) -> list[provider_batches.TickReport]:
    """Run the pipeline as worker and beat would: pending steps, then a provider-batch pass."""
    reports = []
    for _ in range(rounds):
        run_pending_steps()
        reports.append(provider_batches.provider_batches_tick())
        waiting = PipelineStep.objects.filter(status__in=[StepStatus.PENDING, StepStatus.BATCHED]).exists()
        if not waiting:
            return reports
    raise AssertionError("the pipeline did not settle")


def case_record(case: Case) -> dict[str, Any]:
    """What a case produced, without ids, times, costs or batch references."""
    versions = [
        (version.kind, version.number, version.source, version.content)
        for version in ArtefactVersion.objects.filter(case=case).order_by("kind", "number")
    ]
    calls = [
        (call.agent, call.attempt, call.prompt_version, call.request_messages, call.parsed_output, call.input_tokens)
        for call in AgentCall.objects.filter(case=case).order_by("created_at", "pk")
    ]
    return {"status": case.status, "versions": versions, "calls": calls}


def records(batch: GenerationBatch) -> list[dict[str, Any]]:
    return [case_record(case) for case in batch.cases.order_by("code__code")]


def sent_custom_ids(server: FakeBatchApiServer, agent: str) -> list[list[str]]:
    return [batch.custom_ids for batch in server.created if batch.metadata.get("agent") == agent]


def test_a_batch_of_cases_completes_in_batch_mode_with_the_versions_and_calls_of_realtime(server):
    realtime = batch_on(server, execution=ExecutionMode.REALTIME)
    run_until_settled()
    realtime_requests = len(server.served())
    expected = records(realtime)
    # The same cases again in a fresh batch: the codes are the same, so the results compare.
    Case.objects.all().update(status=CaseStatus.CANCELLED)

    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH)
    run_until_settled()

    assert records(batch) == expected
    assert {record["status"] for record in expected} == {CaseStatus.PAIR_REVIEW}
    assert len(server.served()) == realtime_requests, "no realtime request in batch mode"
    assert [batch.metadata["agent"] for batch in server.created] == SIX_AGENTS
    assert all(len(created.lines) == 2 for created in server.created)
    for call in AgentCall.objects.filter(case__batch=batch):
        assert call.provider_batch is not None
        assert call.custom_id == call.step.idempotency_key
        assert call.provider_batch.provider_batch_id in server.batches
    assert set(ProviderBatch.objects.values_list("status", flat=True)) == {ProviderBatchStatus.COMPLETED}


def test_partial_line_failures_are_retried_without_duplicating_successful_lines(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH)
    first, second = batch.cases.order_by("code__code")
    failing = f"case{first.pk}-{AgentName.NOTE_WRITER}-1"
    server.line_failures[failing] = 1

    run_until_settled()

    assert sent_custom_ids(server, AgentName.NOTE_WRITER) == [
        [failing, f"case{second.pk}-{AgentName.NOTE_WRITER}-1"],
        [failing],
    ]
    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.PAIR_REVIEW}
    writer_calls = Counter(AgentCall.objects.filter(agent=AgentName.NOTE_WRITER).values_list("case_id", flat=True))
    assert writer_calls == {first.pk: 1, second.pk: 1}
    failed_line = ProviderBatch.objects.get(agent=AgentName.NOTE_WRITER, succeeded_count=1, line_count=2)
    assert failed_line.lines.get(custom_id=failing).status == LineStatus.FAILED
    assert "HTTP 500" in failed_line.lines.get(custom_id=failing).error


def test_an_expired_batch_is_resubmitted_for_its_unfinished_lines_only(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=3)
    server.expire_next_after = 1

    run_until_settled()

    provider_runs = sent_custom_ids(server, AgentName.SCENARIO_PROVIDER)
    assert len(provider_runs) == 2
    assert len(provider_runs[0]) == 3
    assert provider_runs[1] == provider_runs[0][1:], "only the two lines that did not finish go again"
    expired = ProviderBatch.objects.get(agent=AgentName.SCENARIO_PROVIDER, status=ProviderBatchStatus.EXPIRED)
    assert (expired.succeeded_count, expired.failed_count) == (1, 2)
    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.PAIR_REVIEW}
    assert AgentCall.objects.filter(agent=AgentName.SCENARIO_PROVIDER).count() == 3


def test_a_line_failing_past_its_budget_fails_its_step_and_case(server, settings):
    settings.PROVIDER_BATCH_LINE_ATTEMPTS = 2
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1)
    case = batch.cases.get()
    server.line_failures[f"case{case.pk}-{AgentName.SCENARIO_PROVIDER}-1"] = 5

    run_until_settled()

    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    step = case.steps.get(agent=AgentName.SCENARIO_PROVIDER)
    assert step.status == StepStatus.FAILED
    assert "2 provider batch line(s) of this step failed" in step.error
    assert len(sent_custom_ids(server, AgentName.SCENARIO_PROVIDER)) == 2


def test_a_provider_batch_the_provider_keeps_refusing_fails_its_steps_with_the_reason(server, settings):
    settings.PROVIDER_BATCH_LINE_ATTEMPTS = 1
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1)
    server.reject_batches = 100
    run_pending_steps()

    for _ in range(provider_batches.MAX_SEND_ATTEMPTS):
        provider_batches.provider_batches_tick()
        assert "rejected the request (400): Invalid input file." in ProviderBatch.objects.get().error
    provider_batches.provider_batches_tick()

    assert (server.uploads, server.created) == (1, [])
    assert ProviderBatch.objects.get().status == ProviderBatchStatus.FAILED
    case = batch.cases.get()
    assert case.status == CaseStatus.FAILED
    assert "could not be submitted in 5 attempts" in case.steps.get().error


def test_failed_lines_go_realtime_when_the_batch_asks_for_it(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1, batch_retry_realtime=True)
    case = batch.cases.get()
    server.line_failures[f"case{case.pk}-{AgentName.SCENARIO_PROVIDER}-1"] = 1

    run_until_settled()

    assert len(sent_custom_ids(server, AgentName.SCENARIO_PROVIDER)) == 1
    assert [request.agent for request in server.served()] == [AgentName.SCENARIO_PROVIDER]
    call = AgentCall.objects.get(agent=AgentName.SCENARIO_PROVIDER)
    assert (call.provider_batch, call.custom_id) == (None, "")
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW


def test_an_invalid_reply_in_a_batch_gets_its_one_repair_attempt_realtime(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1)
    case = batch.cases.get()
    custom_id = f"case{case.pk}-{AgentName.NOTE_WRITER}-1"
    server.invalid_json_lines.add(custom_id)

    run_until_settled()

    first, repair = AgentCall.objects.filter(agent=AgentName.NOTE_WRITER).order_by("attempt")
    assert (first.attempt, first.custom_id, first.error_kind) == (1, custom_id, "malformed_json")
    assert first.provider_batch is not None
    assert (repair.attempt, repair.provider_batch, repair.error_kind) == (2, None, "")
    assert repair.request_messages[: len(first.request_messages)] == first.request_messages
    assert [request.agent for request in server.served()] == [AgentName.NOTE_WRITER]
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW


def test_beat_runs_the_provider_batch_pass(settings):
    from generation.tasks import provider_batches_tick

    entry = settings.CELERY_BEAT_SCHEDULE["provider-batches"]
    assert entry["task"] == provider_batches_tick.name
    assert entry["schedule"] == settings.PROVIDER_BATCH_POLL_SECONDS


class Killed(BaseException):
    """The worker died here (a BaseException, so no handler of the code under test sees it)."""


def test_a_worker_killed_while_its_provider_batch_is_in_flight_resumes_polling_without_a_second_submission(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1)
    server.hold = True
    run_pending_steps()
    provider_batches.provider_batches_tick()  # submitted; the worker then dies with the batch in flight
    provider_batches.provider_batches_tick()  # polled: still in progress
    assert len(server.created) == 1
    assert ProviderBatch.objects.get().status == ProviderBatchStatus.IN_PROGRESS

    server.hold = False
    run_until_settled()  # a fresh worker: everything it knows comes from the database

    assert len(server.created) == len(SIX_AGENTS)
    assert sent_custom_ids(server, AgentName.SCENARIO_PROVIDER) == [[f"case{batch.cases.get().pk}-scenario_provider-1"]]
    assert server.uploads == len(SIX_AGENTS)
    assert batch.cases.get().status == CaseStatus.PAIR_REVIEW


def test_a_worker_killed_between_creating_the_provider_batch_and_storing_its_id_finds_it_again(
    server, settings, monkeypatch
):
    settings.PROVIDER_BATCH_LEASE_SECONDS = 0  # the dead pass's hold runs out at once
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1)
    server.hold = True
    run_pending_steps()
    store = provider_batches.provider_batch_id_store

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(provider_batches, "provider_batch_id_store", die)
    with pytest.raises(Killed):
        provider_batches.provider_batches_tick()
    preparing = ProviderBatch.objects.get()
    assert (preparing.status, preparing.provider_batch_id, len(server.created)) == (
        ProviderBatchStatus.PREPARING,
        "",
        1,
    )

    monkeypatch.setattr(provider_batches, "provider_batch_id_store", store)
    server.hold = False
    run_until_settled()

    preparing.refresh_from_db()
    assert preparing.provider_batch_id == server.created[0].id
    assert len(sent_custom_ids(server, AgentName.SCENARIO_PROVIDER)) == 1, "the created batch was found, not redone"
    assert server.uploads == len(SIX_AGENTS)
    assert batch.cases.get().status == CaseStatus.PAIR_REVIEW


def test_steps_wait_for_enough_lines_or_for_the_flush_time(server, settings):
    batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=2, batch_flush_lines=3, batch_flush_seconds=60)
    run_pending_steps()
    provider_batches.provider_batches_tick()
    assert server.created == [], "two of three lines, and they have not waited a minute"

    PipelineStep.objects.update(updated_at=PipelineStep.objects.first().updated_at.replace(year=2020))
    provider_batches.provider_batches_tick()
    assert [len(created.lines) for created in server.created] == [2]


def test_a_paused_batch_sends_no_provider_batch_until_it_is_resumed(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH)
    run_pending_steps()
    batch_pause(batch=batch)
    provider_batches.provider_batches_tick()
    assert server.created == []

    batch_resume(batch=batch)
    run_until_settled()
    assert len(server.created) == len(SIX_AGENTS)
    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.PAIR_REVIEW}


def test_cancelling_the_generation_batch_cancels_its_provider_batches(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH)
    server.hold = True
    run_pending_steps()
    provider_batches.provider_batches_tick()

    batch_cancel(batch=batch)
    provider_batches.provider_batches_tick()  # asks the provider to cancel
    provider_batches.provider_batches_tick()  # sees it cancelled

    assert server.created[0].status == "cancelled"
    provider_batch = ProviderBatch.objects.get()
    assert provider_batch.status == ProviderBatchStatus.CANCELLED
    assert set(PipelineStep.objects.values_list("status", flat=True)) == {StepStatus.FAILED}
    assert not AgentCall.objects.exists()


def test_the_judge_s_rejection_sends_the_revision_in_the_next_provider_batch(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1)
    case = batch.cases.get()
    server.judge_rejections = 1

    run_until_settled()

    assert sent_custom_ids(server, AgentName.SCENARIO_PROVIDER) == [
        [f"case{case.pk}-scenario_provider-1"],
        [f"case{case.pk}-scenario_provider-2"],
    ]
    revision = server.created[2]
    assert "The outcome does not fit the code." in json.dumps(revision.lines[0]["body"]["messages"])
    case.refresh_from_db()
    assert (case.status, case.scenario_revisions) == (CaseStatus.PAIR_REVIEW, 1)


def test_a_reply_the_judge_s_near_duplicate_check_made_unneeded_is_recorded_and_priced(server):
    # Two cases of one code get the same scenario; both judges go out in one provider batch,
    # and once the first approves, the second's scenario is a near duplicate: its reply is not read.
    endpoint = LlmEndpointFactory(base_url=server.base_url, default_model="test-model", supports_batch_api=True)
    LlmModelFactory(endpoint=endpoint, name="test-model", **REALTIME_PRICES)
    config = {"execution": "batch", "batch_flush_seconds": 0, "max_scenario_revisions": 0}
    batch = GenerationBatchFactory(endpoint=endpoint, model="test-model", config=config, status=BatchStatus.RUNNING)
    code = IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    for slot in (1, 2):
        case_start(case=CaseFactory(batch=batch, code=code, slot=slot, role=None))

    run_until_settled()

    first, second = batch.cases.order_by("pk")
    assert (first.status, second.status) == (CaseStatus.PAIR_REVIEW, CaseStatus.NEEDS_ATTENTION)
    unread = AgentCall.objects.get(case=second, agent=AgentName.SCENARIO_JUDGE)
    assert unread.error == "Not used: the step ended without reading it."
    assert unread.custom_id == f"case{second.pk}-scenario_judge-1"
    assert unread.cost == Decimal("0.00065")  # 200 in and 80 out at half of 2.50 and 10.00 per million


def test_replies_that_arrive_after_a_cancel_are_recorded_and_priced_but_not_used(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=2, prices=REALTIME_PRICES)
    server.hold = True
    run_pending_steps()
    provider_batches.provider_batches_tick()
    server.process(server.created[0])  # the provider finished before it saw the cancel

    batch_cancel(batch=batch)
    provider_batches.provider_batches_tick()

    calls = AgentCall.objects.filter(case__batch=batch)
    assert len(calls) == 2
    # 200 input and 80 output tokens at half of 2.50 and 10.00 per million.
    assert {call.cost for call in calls} == {Decimal("0.00065")}
    assert all(call.provider_batch is not None and "Not used" in call.error for call in calls)
    assert not ArtefactVersion.objects.filter(case__batch=batch).exists()
    assert set(PipelineStep.objects.values_list("status", flat=True)) == {StepStatus.FAILED}


def test_gates_hold_the_case_and_a_regeneration_with_a_comment_runs_realtime(server):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1, gates=["note"])
    run_until_settled()
    case = batch.cases.get()
    assert case.status == CaseStatus.NOTE_REVIEW
    batches_before = len(server.created)

    case_regenerate(case=case, stage="note", comment="Add the HbA1c date.", requested_by=UserFactory())
    run_pending_steps()

    assert len(server.created) == batches_before, "the reviewer does not wait for a provider batch"
    assert [request.agent for request in server.served()] == [AgentName.NOTE_WRITER, AgentName.NOTE_POLISHER]
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW
    regenerated = AgentCall.objects.filter(case=case, agent=AgentName.NOTE_WRITER).order_by("pk").last()
    assert regenerated.provider_batch is None
    assert "Add the HbA1c date." in regenerated.request_messages[-1]["content"]


# --- Costs: batch prices and cached tokens, with known usage (200 in, of which 120 cached; 80 out) ---

REALTIME_PRICES = {
    "input_price_per_mtok": Decimal("2.50"),
    "cached_input_price_per_mtok": Decimal("1.25"),
    "output_price_per_mtok": Decimal("10.00"),
}


def test_batch_lines_cost_the_batch_price_and_cached_tokens_the_cached_price(server):
    server.cached_tokens = 120
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1, prices=REALTIME_PRICES)
    run_until_settled()

    # No batch prices set: half the realtime ones. 80 uncached input at 1.25, 120 cached at 0.625, 80 output at 5.
    per_call = Decimal("0.000575")
    calls = AgentCall.objects.filter(case__batch=batch)
    assert [call.cost for call in calls] == [per_call] * len(SIX_AGENTS)
    assert {call.cached_input_tokens for call in calls} == {120}
    # At realtime prices: 80 x 2.50 + 120 x 1.25 + 80 x 10.00 per million.
    saving = provider_batch_selectors.batch_api_saving(batch_id=batch.pk)
    assert (saving.calls, saving.cost, saving.realtime_cost) == (6, 6 * per_call, 6 * Decimal("0.00115"))
    assert saving.saving_percent == 50
    shares = provider_batch_selectors.cache_share_by_agent(batch_id=batch.pk)
    assert [(share.agent, share.percent) for share in shares] == [(agent, 60.0) for agent in SIX_AGENTS]


def test_a_model_s_own_batch_prices_apply_and_realtime_calls_keep_the_realtime_price(server):
    server.cached_tokens = 120
    own = {
        **REALTIME_PRICES,
        "batch_input_price_per_mtok": Decimal("1.00"),
        "batch_cached_input_price_per_mtok": Decimal("0.10"),
        "batch_output_price_per_mtok": Decimal("4.00"),
    }
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1, prices=own)
    run_until_settled()
    assert set(AgentCall.objects.filter(case__batch=batch).values_list("cost", flat=True)) == {Decimal("0.000412")}

    Case.objects.all().update(status=CaseStatus.CANCELLED)
    realtime = batch_on(server, execution=ExecutionMode.REALTIME, cases=1, prices=own)
    run_until_settled()
    assert set(AgentCall.objects.filter(case__batch=realtime).values_list("cost", flat=True)) == {Decimal("0.00115")}
    assert provider_batch_selectors.batch_api_saving(batch_id=realtime.pk) is None


def test_the_batch_page_shows_provider_batches_the_saving_and_the_cache_share(server, admin_member_client):
    server.cached_tokens = 50
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1, prices=REALTIME_PRICES)
    run_until_settled()

    page = admin_member_client.get(f"/generation/batches/{batch.pk}/").content.decode()

    for created in server.created:
        assert created.id in page
    assert "Scenario judge" in page
    assert "saved <strong>$" in page
    assert "25%" in page  # 50 of 200 input tokens came from the cache


# --- Choosing the mode ---------------------------------------------------------------------


def test_the_launch_form_and_the_command_set_batch_execution(server):
    endpoint = LlmEndpointFactory(base_url=server.base_url, default_model=server.model, supports_batch_api=True)
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    form = BatchLaunchForm(
        data={
            "codes": "E11.9",
            "pairs_per_code": 1,
            "endpoint": endpoint.pk,
            "reviews_required": 1,
            "execution": "batch",
        }
    )
    assert form.is_valid(), form.errors
    assert form.batch_request().config["execution"] == ExecutionMode.PROVIDER_BATCH

    command = ["generate", "--codes", "E11.9", "--endpoint", endpoint.name, "--execution", "batch", "--retry-realtime"]
    call_command(*command, stdout=StringIO())
    config = GenerationBatch.objects.get().config
    assert (config["execution"], config["batch_retry_realtime"]) == (ExecutionMode.PROVIDER_BATCH, True)


def test_batch_execution_is_refused_on_an_endpoint_without_the_batch_api(server):
    endpoint = LlmEndpointFactory(base_url=server.base_url, default_model=server.model, supports_batch_api=False)
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    request = BatchRequest(codes=["E11.9"], endpoint_name=endpoint.name, config={"execution": "batch"})
    with pytest.raises(BatchPlanError, match="does not offer the Batch API"):
        batch_create(request=request)
    assert not GenerationBatch.objects.exists()


def test_a_step_that_died_after_recording_its_batch_reply_does_not_bill_it_twice(server, monkeypatch):
    batch = batch_on(server, execution=ExecutionMode.PROVIDER_BATCH, cases=1, prices=REALTIME_PRICES)
    run_pending_steps()  # the scenario provider's request waits for a provider batch
    provider_batches.provider_batches_tick()  # submitted
    provider_batches.provider_batches_tick()  # its reply is in: the step is queued to read it
    complete = scenario_runner.step_complete

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed  # the worker dies after the call row, before the version and the next step

    monkeypatch.setattr(scenario_runner, "step_complete", die)
    step = PipelineStep.objects.get(status=StepStatus.PENDING, agent=AgentName.SCENARIO_PROVIDER)
    with pytest.raises(Killed):
        pipeline_step_run(step_id=step.pk, task_id="dies")
    PipelineStep.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    monkeypatch.setattr(scenario_runner, "step_complete", complete)
    pipeline_step_run(step_id=step.pk, task_id="takes over")  # the recovery pass sends it again
    run_until_settled()

    provider_calls = AgentCall.objects.filter(case__batch=batch, agent=AgentName.SCENARIO_PROVIDER)
    # Two rows for the one line (the dead run's and the rerun's): tokens and cost once.
    billed = sorted((call.input_tokens > 0, call.cost > 0) for call in provider_calls)
    assert billed == [(False, False), (True, True)]
    assert {call.custom_id for call in provider_calls} == {f"case{batch.cases.get().pk}-scenario_provider-1"}
    assert batch.cases.get().status == CaseStatus.PAIR_REVIEW
