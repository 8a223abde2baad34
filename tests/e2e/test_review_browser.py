"""The review workspace in a real browser: keyboard review, inline edits and their
history, refusals, concurrent edits, and hostile LLM text."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from generation.models import ArtefactVersion, CaseStatus, VersionSource
from review.models import ReviewDecision
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PASSWORD = "correct horse battery staple"


def item_path(case, queue="pair"):
    return f"/review/case/{case.pk}/?queue={queue}"


def test_log_in_open_the_queue_approve_with_the_keyboard_and_the_next_item_opens(browser, live_server, roles):
    clinician = ClinicianFactory()
    first, second = case_in_review(), case_in_review()
    page = browser.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", clinician.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        page.get_by_role("link", name="Review").first.click()
        page.get_by_role("link", name=re.compile("Final pairs")).click()
        page.wait_for_url(re.compile(r"/review/queue/pair/"))
        page.keyboard.press("j")
        page.wait_for_url(re.compile(re.escape(item_path(first))))
        page.keyboard.press("?")
        assert page.locator("#shortcut-help").is_visible()
        page.keyboard.press("Escape")
        page.keyboard.press("a")
        page.wait_for_url(re.compile(re.escape(item_path(second))))
        first.refresh_from_db()
        assert first.status == CaseStatus.APPROVED
        assert ReviewDecision.objects.get(case=first, reviewer=clinician).action == "approve"
    finally:
        page.close()


def test_edit_a_note_section_and_a_dialogue_turn_then_the_history_shows_the_diff(open_session, live_server):
    case = case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    page.get_by_role("link", name="Edit plan").click()
    plan = page.locator("#note-section-plan textarea")
    plan.fill("Start metformin 1000 mg by mouth twice daily. Recheck HbA1c in 3 months.")
    page.get_by_role("button", name="Save section").click()
    page.locator("#note-section-plan", has_text="1000 mg").wait_for()
    page.get_by_role("link", name="Edit turn 2").click()
    page.locator("#dialogue-panel select[name=speaker]").select_option("patient")
    page.locator("#dialogue-panel textarea[name=text]").fill("I'm thirsty all day, and I get up twice a night.")
    page.get_by_role("button", name="Save turn").click()
    page.locator("#turn-1", has_text="twice a night").wait_for()
    # The decision form now names the edited versions.
    assert page.locator("#decision-form input[name=seen_note]").input_value() == "2"
    page.get_by_role("link", name="History").click()
    page.select_option("#id_kind", "note")
    page.locator("#version-diff del", has_text="500").wait_for()
    assert page.locator("#version-diff ins", has_text="1000").count() == 1
    page.select_option("#id_kind", "dialogue")
    page.locator("#version-diff ins", has_text="twice a night").wait_for()


def test_a_reject_without_a_comment_is_refused(open_session, live_server):
    case = case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    page.keyboard.press("r")
    page.keyboard.press("Escape")  # the shortcut focused the reason; leave the field again
    page.select_option("#decision-form select[name=reason]", "factually_wrong")
    page.get_by_role("button", name="Reject", exact=True).click()
    page.get_by_text("A rejection needs a comment").wait_for()
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert not ReviewDecision.objects.exists()


def test_two_sessions_edit_the_same_section_and_the_second_is_told_and_keeps_its_text(open_session, live_server):
    case = case_in_review()
    first = open_session(ClinicianFactory(username="dr_first"))
    second = open_session(ClinicianFactory(username="dr_second"))
    for page in (first, second):
        page.goto(live_server.url + item_path(case))
        page.get_by_role("link", name="Edit plan").click()
    first.locator("#note-section-plan textarea").fill("First reviewer's plan.")
    first.get_by_role("button", name="Save section").click()
    first.locator("#note-section-plan", has_text="First reviewer's plan.").wait_for()
    second.locator("#note-section-plan textarea").fill("Second reviewer's careful plan.")
    second.get_by_role("button", name="Save section").click()
    second.get_by_text("saved version 2 while you were editing").wait_for()
    assert second.locator("#note-section-plan textarea").input_value() == "Second reviewer's careful plan."
    # The browser keeps its copy too: a refused save is not a saved one.
    drafts = second.evaluate("() => Object.keys(localStorage).filter(key => key.startsWith('medsynth-draft:'))")
    assert len(drafts) == 1
    draft = ArtefactVersion.objects.get(case=case, source=VersionSource.HUMAN_DRAFT)
    assert draft.content["plan"] == "Second reviewer's careful plan."


def test_llm_markup_is_shown_as_text_and_runs_nothing(open_session, live_server):
    hostile_script = "<script>window.__pwned = 'script'</script>"
    hostile_img = "<img src=x onerror=\"window.__pwned = 'img'\">"
    case = case_in_review(
        note={"subjective": hostile_script, "objective": hostile_img, "assessment": "a", "plan": "p"},
        dialogue={"turns": [{"speaker": "patient", "text": hostile_img + hostile_script}]},
    )
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    assert page.locator("#note-section-subjective").inner_text().count(hostile_script) == 1
    assert hostile_img in page.locator("#turn-0").inner_text()
    assert page.locator("#note-panel img, #dialogue-panel img, #note-panel script, #dialogue-panel script").count() == 0
    page.get_by_role("link", name="Edit objective").click()  # the text also travels through an htmx swap
    page.locator("#note-section-objective textarea").wait_for()
    assert page.evaluate("window.__pwned") is None
    # A picture of the item screen for a human to check the layout.
    page.screenshot(path=Path(tempfile.gettempdir()) / "review_item_screen.png", full_page=True)
