"""`manage.py generate --estimate` and `--budget`."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from generation.models import EXECUTION_CONFIG_KEY, AgentName, ExecutionMode, GenerationBatch
from generation.services.batches import BatchRequest, batch_request_estimate
from tests.factories import IcdCodeFactory, LlmEndpointFactory, LlmModelFactory
from tests.generation.pipeline_fakes import make_endpoint
from tests.llm_replay import llm_replay, models_response

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint():
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    return make_endpoint()


def test_estimate_prints_each_agent_and_the_total_and_creates_nothing(endpoint):
    out = StringIO()
    with llm_replay([]):  # no call to the endpoint
        call_command(
            "generate", "--codes", "E11.9", "--per-code", "4", "--endpoint", endpoint.name, "--estimate", stdout=out
        )

    text = out.getvalue()
    expected = batch_request_estimate(
        request=BatchRequest(codes=["E11.9"], pairs_per_code=4, endpoint_name=endpoint.name)
    )
    assert f"Estimate for 4 case(s) on {endpoint.name} (test-model):" in text
    for agent in AgentName:
        assert agent.label in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert f"{expected.cost:.4f}" in total
    assert "No price is set for this model" in text  # the test model's prices are 0
    assert "Nothing was created (--estimate)." in text
    assert not GenerationBatch.objects.exists()


def test_budget_caps_the_batch(endpoint):
    out = StringIO()
    with llm_replay([models_response(["test-model"])]):
        call_command("generate", "--codes", "E11.9", "--endpoint", endpoint.name, "--budget", "$7.25", stdout=out)
    batch = GenerationBatch.objects.get()
    assert batch.budget == Decimal("7.25")
    assert "cap $7.2500" in out.getvalue()


@pytest.mark.parametrize(
    ("budget", "problem"), [("lots", "not an amount in dollars"), ("NaN", "not an amount"), ("0", r"must be above \$0")]
)
def test_a_bad_budget_is_refused_and_nothing_is_created(endpoint, budget, problem):
    with pytest.raises(CommandError, match=problem):
        call_command("generate", "--codes", "E11.9", "--endpoint", endpoint.name, "--budget", budget)
    assert not GenerationBatch.objects.exists()


def test_a_batch_run_on_the_provider_batch_api_is_estimated_at_its_batch_prices():
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    endpoint = LlmEndpointFactory(default_model="priced-model", supports_batch_api=True)
    # Batch prices a fifth of the realtime ones, cached input priced like other input.
    LlmModelFactory(
        endpoint=endpoint,
        name="priced-model",
        input_price_per_mtok=Decimal("5"),
        output_price_per_mtok=Decimal("10"),
        batch_input_price_per_mtok=Decimal("1"),
        batch_cached_input_price_per_mtok=Decimal("1"),
        batch_output_price_per_mtok=Decimal("2"),
    )

    def estimate(execution: str) -> Decimal:
        config = {EXECUTION_CONFIG_KEY: execution, "examples_per_prompt": 0}
        request = BatchRequest(codes=["E11.9"], pairs_per_code=3, endpoint_name=endpoint.name, config=config)
        return batch_request_estimate(request=request).cost

    realtime, batch = estimate(ExecutionMode.REALTIME), estimate(ExecutionMode.PROVIDER_BATCH)
    assert realtime > 0
    assert batch == pytest.approx(realtime / 5, rel=Decimal("0.01"))
