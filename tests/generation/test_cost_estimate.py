"""The cost estimate against what a batch was billed: small batches run against the local
OpenAI-compatible test server, which answers like a model following its prompt and reports
the token usage of the real request and reply sizes (tests/fake_llm_server.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from generation.models import AgentCall, AgentName, CaseStatus, GenerationBatch
from generation.services import estimates
from generation.services.batches import BatchRequest, batch_create, batch_request_estimate, batch_start
from tests.factories import IcdCodeFactory, LlmEndpointFactory, LlmModelFactory
from tests.fake_llm_server import fake_llm_server
from tests.generation.pipeline_fakes import run_pending_steps

pytestmark = pytest.mark.django_db

# gpt-4o's list prices per million tokens: input, cached input, output.
PRICES = {"input_price_per_mtok": Decimal("2.50"), "cached_input_price_per_mtok": Decimal("1.25")}
OUTPUT_PRICE = Decimal("10.00")
TOLERANCE = 0.25


def _codes() -> list[str]:
    """Three codes of three chapters, as the catalogue has them."""
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    IcdCodeFactory(code="J02.9", description="Acute pharyngitis, unspecified", chapter="10")
    return ["E11.9", "I10", "J02.9"]


def _endpoint(server):
    endpoint = LlmEndpointFactory(name="fake-provider", base_url=server.base_url, default_model=server.model)
    LlmModelFactory(endpoint=endpoint, name=server.model, output_price_per_mtok=OUTPUT_PRICE, **PRICES)
    return endpoint


def _run(request: BatchRequest) -> GenerationBatch:
    batch = batch_create(request=request)
    batch_start(batch_id=batch.pk)
    run_pending_steps(limit=400)
    batch.refresh_from_db()
    return batch


def _billed(batch: GenerationBatch) -> Decimal:
    return sum((call.cost for call in AgentCall.objects.filter(case__batch=batch)), Decimal(0))


def _assert_close(estimated: Decimal, billed: Decimal) -> None:
    assert billed > 0
    error = abs(estimated - billed) / billed
    assert error <= TOLERANCE, f"estimated ${estimated:.4f}, billed ${billed:.4f} ({error:.0%} off)"


def test_without_history_the_estimate_from_the_rendered_prompts_is_within_a_quarter_of_the_bill():
    codes = _codes()
    with fake_llm_server(like_a_model=True, seed=3) as server:
        request = BatchRequest(codes=codes, pairs_per_code=2, endpoint_name=_endpoint(server).name)
        estimate = batch_request_estimate(request=request)
        assert {row.source for row in estimate.agents} == {estimates.SOURCE_PROMPTS}
        assert GenerationBatch.objects.count() == 0  # estimating creates nothing
        batch = _run(request)

    assert set(batch.cases.values_list("status", flat=True)) == {CaseStatus.PAIR_REVIEW}
    billed = _billed(batch)
    _assert_close(estimate.cost, billed)
    assert estimate.cost_low <= billed <= estimate.cost_high
    # The provider reported cached prompt tokens, and the bill priced them at the cached rate.
    assert AgentCall.objects.filter(case__batch=batch, cached_input_tokens__gt=0).exists()
    assert estimate.calls == batch.cases.count() * len(AgentName.values)


def test_with_history_the_estimate_from_past_calls_is_within_a_quarter_of_the_bill(monkeypatch):
    """The judge rejects a share of the scenarios: the history's rejection rate adds the revisions."""
    monkeypatch.setattr(estimates, "MIN_HISTORY_STEPS", 6)  # the same rule, with a smaller first batch
    codes = _codes()
    with fake_llm_server(like_a_model=True, judge_reject_rate=0.3, seed=7) as server:
        endpoint = _endpoint(server)
        first = _run(BatchRequest(codes=codes, pairs_per_code=2, endpoint_name=endpoint.name, name="history"))
        request = BatchRequest(codes=codes, pairs_per_code=2, endpoint_name=endpoint.name)
        estimate = batch_request_estimate(request=request)
        second = _run(request)

    assert {row.source for row in estimate.agents} == {estimates.SOURCE_HISTORY}
    assert estimate.judge_rejection_rate > 0
    provider = next(row for row in estimate.agents if row.agent == AgentName.SCENARIO_PROVIDER)
    assert provider.calls > second.cases.count()  # revisions counted
    assert first.cases.exclude(status=CaseStatus.PAIR_REVIEW).count() == 0
    _assert_close(estimate.cost, _billed(second))


def test_the_scenario_rounds_follow_the_judges_rejection_rate_up_to_the_revision_cap():
    assert estimates.scenario_rounds(rejection_rate=0.0, max_revisions=5) == 1.0
    assert estimates.scenario_rounds(rejection_rate=0.5, max_revisions=2) == pytest.approx(1 + 0.5 + 0.25)
    assert estimates.scenario_rounds(rejection_rate=1.0, max_revisions=5) == 6.0


def test_the_judge_sees_more_approved_scenarios_as_the_batch_approves_its_own():
    assert estimates.mean_similar_shown(approved=0, pairs_per_code=1, k=5) == 0
    assert estimates.mean_similar_shown(approved=0, pairs_per_code=3, k=5) == pytest.approx((0 + 1 + 2) / 3)
    assert estimates.mean_similar_shown(approved=7, pairs_per_code=2, k=5) == 5
