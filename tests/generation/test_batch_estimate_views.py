"""The launch form's confirmation step: Plan -> the cost estimate -> confirm and start."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from generation.models import AgentName, GenerationBatch
from generation.services.batches import BatchRequest, batch_request_estimate
from tests.factories import IcdCodeFactory
from tests.generation.pipeline_fakes import make_endpoint
from tests.llm_replay import llm_replay, models_response

pytestmark = pytest.mark.django_db

ESTIMATE = reverse("generation:batch-estimate")
CONFIRM = reverse("generation:batch-confirm")


@pytest.fixture
def endpoint():
    return make_endpoint()


@pytest.fixture
def plan(endpoint):
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    return {"codes": "I10", "pairs_per_code": 3, "endpoint": endpoint.pk, "reviews_required": 1, "gates": ["note"]}


def test_the_launch_form_leads_to_the_estimate(admin_member_client):
    page = admin_member_client.get(reverse("generation:batch-launch")).text
    assert f'action="{ESTIMATE}"' in page
    assert "Plan and see the cost" in page


def test_the_estimate_shows_every_agent_and_the_total_and_creates_nothing(admin_member_client, plan):
    with llm_replay([]):  # no LLM endpoint is asked anything
        response = admin_member_client.post(ESTIMATE, plan)

    assert response.status_code == 200
    estimate = response.context["estimate"]
    assert estimate.cases == 3
    text = response.text
    for agent in AgentName:
        assert agent.label in text
    assert f"${estimate.cost:.4f}" in text
    assert f"${estimate.cost_low:.4f}" in text
    assert f"${estimate.cost_high:.4f}" in text
    # The plan rides along in hidden fields to the confirmation.
    assert 'type="hidden" name="codes" value="I10"' in text
    assert 'type="hidden" name="gates" value="note"' in text
    assert f'action="{CONFIRM}"' in text
    assert not GenerationBatch.objects.exists()


def test_a_plan_the_estimate_cannot_price_is_shown_with_its_error(admin_member_client, plan):
    response = admin_member_client.post(ESTIMATE, {**plan, "codes": "I10, NOPE1"})
    assert response.status_code == 400
    assert "Unknown ICD-10-CM code(s): NOPE1" in response.text
    assert "Plan and see the cost" in response.text
    assert not GenerationBatch.objects.exists()


def test_changing_the_plan_shows_the_form_as_it_was_filled(admin_member_client, plan):
    response = admin_member_client.post(ESTIMATE, {**plan, "change": "1"})
    assert response.status_code == 200
    assert "Launch a generation batch" in response.text
    assert 'name="pairs_per_code" value="3"' in response.text


def test_confirming_creates_the_batch_with_its_cap_and_its_estimate(admin_member_client, plan, endpoint, admin_member):
    expected = batch_request_estimate(
        request=BatchRequest(codes=["I10"], pairs_per_code=3, endpoint_name=endpoint.name, gates=["note"])
    )
    with llm_replay([models_response(["test-model"])]):
        response = admin_member_client.post(CONFIRM, {**plan, "budget": "12.50"})

    batch = GenerationBatch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("generation:batch-detail", args=[batch.pk])
    assert (batch.planned_count, batch.budget, batch.created_by) == (3, Decimal("12.50"), admin_member)
    assert Decimal(batch.cost_estimate["cost"]) == expected.cost

    page = admin_member_client.get(response.url).text
    assert f"$0.0000 of ${expected.cost:.4f} estimated" in page
    assert "$12.5000 ($12.5000 left)" in page
    assert "- (none approved yet)" in page


def test_a_bad_cap_is_refused_on_the_confirmation_and_nothing_is_created(admin_member_client, plan):
    response = admin_member_client.post(CONFIRM, {**plan, "budget": "-3"})
    assert response.status_code == 400
    assert "What this batch will cost" in response.text
    assert "Ensure this value is greater than or equal to 0.0001" in response.text
    assert not GenerationBatch.objects.exists()
