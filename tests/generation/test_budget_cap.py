"""A batch's budget cap: the batch pauses before a step would take it past the cap (nothing
fails, nothing is lost) and resumes when the cap is raised."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from generation import selectors
from generation.models import (
    AgentCall,
    AgentName,
    BatchStatus,
    CaseStatus,
    GenerationBatch,
    LlmModel,
    PauseReason,
    PipelineStep,
    StepStatus,
)
from generation.services.batches import (
    BatchOperationRefused,
    BatchRequest,
    batch_budget_set,
    batch_create,
    batch_pause,
    batch_start,
)
from generation.services.pipeline import pipeline_step_run
from medsynth_site.celery import app as celery_app
from tests.factories import IcdCodeFactory
from tests.generation.pipeline_fakes import agent_answerer, make_endpoint
from tests.llm_replay import llm_replay

pytestmark = pytest.mark.django_db

# Every replayed answer reports 200 input and 80 output tokens; at $100 per million tokens
# each way a call costs 280 * 100 / 1e6 dollars.
PRICE_PER_MTOK = Decimal(100)
CALL_COST = Decimal(280) * PRICE_PER_MTOK / Decimal(1_000_000)
STEP_RESERVE = Decimal("0.05")
STEPS_PER_CASE = len(AgentName.values)


@pytest.fixture
def eager_tasks():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _capped_batch(budget: Decimal) -> GenerationBatch:
    """Two cases, every step reserving STEP_RESERVE against `budget` while it runs."""
    endpoint = make_endpoint()
    LlmModel.objects.filter(endpoint=endpoint).update(
        input_price_per_mtok=PRICE_PER_MTOK, output_price_per_mtok=PRICE_PER_MTOK
    )
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    with llm_replay([agent_answerer()]):
        batch = batch_create(request=BatchRequest(codes=["E11.9", "I10"], endpoint_name=endpoint.name, budget=budget))
    assert batch.budget == budget
    assert batch.cost_estimate["step_reserve"].keys() == set(AgentName.values)
    reserves = dict.fromkeys(AgentName.values, str(STEP_RESERVE))
    GenerationBatch.objects.filter(pk=batch.pk).update(cost_estimate={"step_reserve": reserves})
    batch_start(batch_id=batch.pk)
    return batch


def _run_until_paused_or_done(batch: GenerationBatch) -> None:
    """Run waiting steps in order, as one worker would, until none is left or the batch pauses."""
    answer = agent_answerer()
    with llm_replay([answer] * 100):
        while step := PipelineStep.objects.filter(case__batch=batch, status=StepStatus.PENDING).order_by("id").first():
            pipeline_step_run(step_id=step.pk, task_id=f"test-{step.pk}")
            batch.refresh_from_db()
            if batch.status == BatchStatus.PAUSED:
                return


def _fitting_steps(budget: Decimal) -> int:
    """How many steps run one after another: each starts while spent + its reserve fits."""
    started = 0
    while started * CALL_COST + STEP_RESERVE <= budget:
        started += 1
    return started


def test_a_batch_pauses_at_its_cap_with_nothing_lost_and_resumes_when_the_cap_is_raised(
    eager_tasks, django_capture_on_commit_callbacks, admin_member_client
):
    budget = Decimal("0.20")
    batch = _capped_batch(budget)
    _run_until_paused_or_done(batch)

    expected_steps = _fitting_steps(budget)
    assert 0 < expected_steps < 2 * STEPS_PER_CASE
    assert batch.status == BatchStatus.PAUSED
    assert batch.pause_reason == PauseReason.BUDGET
    spent = selectors.batch_spent(batch_id=batch.pk)
    assert spent == expected_steps * CALL_COST
    assert spent <= budget
    # Nothing failed or was dropped: the held step waits, with no call made for it.
    steps = PipelineStep.objects.filter(case__batch=batch)
    assert steps.filter(status=StepStatus.SUCCEEDED).count() == expected_steps
    assert not steps.filter(status=StepStatus.FAILED).exists()
    held = list(steps.filter(status=StepStatus.PENDING))
    assert held
    assert not AgentCall.objects.filter(step__in=held).exists()
    assert not batch.cases.filter(status__in=[CaseStatus.FAILED, CaseStatus.NEEDS_ATTENTION]).exists()

    page = admin_member_client.get(reverse("generation:batch-detail", args=[batch.pk])).content.decode()
    assert "Paused at its budget cap" in page
    assert ">Resume</button>" not in page  # raising the cap resumes it, not the button
    assert 'id="batch-budget"' in page

    with llm_replay([agent_answerer()] * 100) as replay, django_capture_on_commit_callbacks(execute=True):
        change = batch_budget_set(batch=batch, budget=Decimal("5"))

    assert change.resumed == len(held)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert batch.pause_reason == PauseReason.NONE
    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.PAIR_REVIEW}
    # Every step ran once: the ones before the pause, and the rest after it.
    assert len(replay.chat_requests) == 2 * STEPS_PER_CASE - expected_steps
    assert AgentCall.objects.filter(case__batch=batch).count() == 2 * STEPS_PER_CASE
    for step in held:
        step.refresh_from_db()
        assert step.status == StepStatus.SUCCEEDED
        assert step.calls.count() == 1


def test_a_cap_that_still_leaves_no_room_keeps_the_batch_paused_and_one_below_the_spending_is_refused(
    django_capture_on_commit_callbacks,
):
    batch = _capped_batch(Decimal("0.20"))
    _run_until_paused_or_done(batch)
    spent = selectors.batch_spent(batch_id=batch.pk)

    with django_capture_on_commit_callbacks() as enqueued:
        change = batch_budget_set(batch=batch, budget=spent + STEP_RESERVE / 2)
    assert change.still_short
    assert enqueued == []
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAUSED
    assert batch.budget == spent + STEP_RESERVE / 2

    with pytest.raises(BatchOperationRefused, match="already spent"):
        batch_budget_set(batch=batch, budget=spent)
    batch.refresh_from_db()
    assert batch.budget == spent + STEP_RESERVE / 2


def test_raising_the_cap_does_not_resume_a_batch_an_admin_paused(django_capture_on_commit_callbacks):
    batch = _capped_batch(Decimal("0.20"))
    batch_pause(batch=batch)
    with django_capture_on_commit_callbacks() as enqueued:
        change = batch_budget_set(batch=batch, budget=Decimal("9"))
    assert change.resumed is None
    assert enqueued == []
    batch.refresh_from_db()
    assert (batch.status, batch.pause_reason) == (BatchStatus.PAUSED, PauseReason.ADMIN)


def test_a_running_step_holds_its_reserve_less_what_it_has_spent():
    batch = _capped_batch(Decimal("0.20"))
    step = PipelineStep.objects.get(case__batch=batch, agent=AgentName.SCENARIO_PROVIDER, case__code__code="E11.9")
    PipelineStep.objects.filter(pk=step.pk).update(status=StepStatus.RUNNING, reserved_cost=STEP_RESERVE)
    assert selectors.batch_reserved_cost(batch_id=batch.pk) == STEP_RESERVE
    AgentCall.objects.create(
        case=step.case, step=step, agent=step.agent, endpoint_name="x", model="m", request_messages=[], cost=CALL_COST
    )
    assert selectors.batch_reserved_cost(batch_id=batch.pk) == STEP_RESERVE - CALL_COST
    assert selectors.batch_reserved_cost(batch_id=batch.pk, excluding_step_id=step.pk) == 0


def test_a_step_waiting_in_a_provider_batch_keeps_its_reserve():
    batch = _capped_batch(Decimal("0.20"))
    step = PipelineStep.objects.get(case__batch=batch, agent=AgentName.SCENARIO_PROVIDER, case__code__code="E11.9")
    PipelineStep.objects.filter(pk=step.pk).update(status=StepStatus.BATCHED, reserved_cost=STEP_RESERVE)
    assert selectors.batch_reserved_cost(batch_id=batch.pk) == STEP_RESERVE


def test_the_budget_form_on_the_batch_page_raises_the_cap_and_resumes(
    eager_tasks, django_capture_on_commit_callbacks, admin_member_client
):
    batch = _capped_batch(Decimal("0.20"))
    _run_until_paused_or_done(batch)
    url = reverse("generation:batch-budget", args=[batch.pk])

    refused = admin_member_client.post(url, {"budget": "0.01"}, headers={"HX-Request": "true"})
    assert refused.status_code == 400
    assert "already spent" in refused.content.decode()
    assert 'value="0.01"' in refused.content.decode()  # what was typed is kept

    with llm_replay([agent_answerer()] * 100), django_capture_on_commit_callbacks(execute=True):
        response = admin_member_client.post(url, {"budget": "5"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "the batch resumed" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert batch.budget == Decimal("5")


def test_the_batch_command_raises_the_cap_headless(eager_tasks, django_capture_on_commit_callbacks):
    batch = _capped_batch(Decimal("0.20"))
    _run_until_paused_or_done(batch)
    out = StringIO()

    with pytest.raises(CommandError, match="give either --amount USD or --no-cap"):
        call_command("batch", "budget", str(batch.pk), stdout=out)
    with llm_replay([agent_answerer()] * 100), django_capture_on_commit_callbacks(execute=True):
        call_command("batch", "budget", str(batch.pk), "--amount", "$4", stdout=out)

    assert "Cap set to $4; the batch resumed" in out.getvalue()
    batch.refresh_from_db()
    assert (batch.status, batch.budget) == (BatchStatus.COMPLETED, Decimal("4"))
