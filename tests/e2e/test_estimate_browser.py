"""The cost estimate in a real browser: the batch form shows what the batch will cost before
anything is created, and confirming starts it with its cap (steps run eagerly in the live
server, model replies replayed)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from generation.models import GenerationBatch, LlmModel
from medsynth_site.celery import app as celery_app
from tests.factories import AdminFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import agent_answerer, make_endpoint
from tests.llm_replay import llm_replay

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def eager_steps():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def test_the_estimate_appears_before_launch_and_confirming_starts_the_capped_batch(
    open_session, live_server, eager_steps
):
    endpoint = make_endpoint(is_default=True)
    LlmModel.objects.filter(endpoint=endpoint).update(
        input_price_per_mtok=Decimal("2.50"), output_price_per_mtok=Decimal("10.00")
    )
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    page = open_session(AdminFactory())
    page.goto(f"{live_server.url}/generation/batches/new/")
    page.locator("input[name=codes]").fill("I10")
    page.locator("input[name=pairs_per_code]").fill("2")

    with llm_replay([]):  # estimating asks no endpoint anything
        page.get_by_role("button", name="Plan and see the cost").click()
        estimate = page.locator("#batch-estimate")
        estimate.wait_for()
    assert "What this batch will cost" in page.content()
    assert estimate.get_by_role("row", name=re.compile("Scenario provider")).count() == 1
    assert estimate.get_by_role("row", name=re.compile("Dialogue polisher")).count() == 1
    total = estimate.get_by_role("row", name=re.compile("^Total"))
    assert re.search(r"\$0\.\d{4}", total.inner_text())
    assert not GenerationBatch.objects.exists()  # nothing is created before the confirmation

    page.get_by_label("Budget cap (USD)").fill("3")
    with llm_replay([agent_answerer()] * 30):
        page.get_by_role("button", name="Confirm and start").click()
        page.wait_for_url(re.compile(r"/generation/batches/\d+/$"))
        page.locator("#batch-spent-vs-estimate", has_text="estimated").wait_for()
    batch = GenerationBatch.objects.get()
    assert batch.budget == Decimal("3")
    assert batch.planned_count == 2
