"""The batch form's code picker in a real browser: search the catalogue, move with the arrow
keys, pick with Enter (or a click); the code lands in the typed list as a chip (whose button
removes it), the preview shows the list, and the batch is planned with it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from generation.models import GenerationBatch
from tests.factories import AdminFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import make_endpoint
from tests.llm_replay import llm_replay, models_response

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_autocomplete_picks_a_code_into_the_batch_form(open_session, live_server):
    make_endpoint(name="lab", is_default=True)
    IcdCodeFactory(code="E11.65", description="Type 2 diabetes mellitus with hyperglycemia", frequency=900)
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", frequency=50)
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", frequency=1200)
    page = open_session(AdminFactory())
    page.goto(f"{live_server.url}/generation/batches/new/")
    page.fill("#id_codes", "I10")  # a typed code stays in the list beside the picked one

    search = page.get_by_role("combobox", name="Search the ICD-10-CM catalogue")
    search.press_sequentially("diabetes mellitus")
    options = page.locator("#code-options [role=option]")
    options.first.wait_for()
    assert options.count() == 2
    search.press("ArrowDown")  # from the first option (E11.65, the most frequent) to the second
    assert page.locator("#code-options [aria-selected=true]").get_attribute("data-code") == "E11.9"
    search.press("Enter")

    assert page.input_value("#id_codes") == "I10, E11.9"
    assert page.locator(".code-chip").all_inner_texts() == ["I10 ×", "E11.9 ×"]
    assert page.locator("#code-options").is_hidden()
    page.locator("#code-preview td", has_text="E11.9").wait_for()

    search.press_sequentially("e11.6")  # a code prefix, picked with the mouse
    page.locator("#code-options [role=option]", has_text="E11.65").click()
    assert page.input_value("#id_codes") == "I10, E11.9, E11.65"
    page.get_by_role("button", name="Remove E11.9").click()
    assert page.input_value("#id_codes") == "I10, E11.65"
    preview = page.locator("#code-preview")
    expect(preview.locator("tbody td:first-child")).to_have_text(["I10", "E11.65"])
    preview.get_by_text("2 code(s); 2 new pair(s)").wait_for()

    with llm_replay([models_response(["test-model"])]):
        page.get_by_role("button", name="Plan and see the cost").click()
        page.get_by_role("button", name="Confirm and start").click()
        page.wait_for_url(re.compile(r"/generation/batches/\d+/$"))
    batch = GenerationBatch.objects.get()
    assert sorted(batch.cases.values_list("code__code", flat=True)) == ["E11.65", "I10"]
