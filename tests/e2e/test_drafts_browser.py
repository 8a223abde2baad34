"""Nothing typed is lost, in a real browser: refused saves, server errors, an expired session,
a reload, inline saves beside a half-written comment, several editors open at once."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from generation.models import ArtefactKind, VersionSource
from generation.selectors import current_version
from review import services
from review.models import ReviewAction
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PASSWORD = "correct horse battery staple"


def item_path(case, queue="pair"):
    return f"/review/case/{case.pk}/?queue={queue}"


def browser_drafts(page):
    """The keys of the copies this browser keeps of unsaved text."""
    return page.evaluate("() => Object.keys(localStorage).filter(key => key.startsWith('medsynth-draft:')).sort()")


def open_section_editor(page, section, text):
    page.get_by_role("link", name=f"Edit {section}").click()
    field = page.locator(f"#note-section-{section} textarea")
    field.fill(text)
    return field


def test_a_refused_save_shows_the_servers_message_and_keeps_the_text(open_session, live_server):
    clinician = ClinicianFactory()
    case = case_in_review()
    page = open_session(clinician)
    page.goto(live_server.url + item_path(case))
    plan = open_section_editor(page, "plan", "A plan I spent ten minutes on.")
    # Meanwhile another reviewer approves the pair, so its note can no longer be edited.
    services.review_decision_record(
        case=case, reviewer=ClinicianFactory(), action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
    )
    page.get_by_role("button", name="Save section").click()
    message = page.locator("#note-section-plan form .request-error")
    expect(message).to_contain_text("This note cannot be edited now.")
    expect(message).to_contain_text("Your text is still here.")
    assert plan.input_value() == "A plan I spent ten minutes on."
    assert browser_drafts(page) == [f"medsynth-draft:u{clinician.pk}/case{case.pk}/note/plan"]


def test_a_server_error_during_a_save_keeps_the_text_and_a_retry_saves_it(open_session, live_server, monkeypatch):
    case = case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    plan = open_section_editor(page, "plan", "Metformin 1000 mg twice daily; recheck HbA1c in 3 months.")

    def database_went_away(**_edit):
        raise RuntimeError("the database went away")

    # The live server runs in this process, so its view calls the patched service.
    monkeypatch.setattr(services, "note_section_edit", database_went_away)
    page.get_by_role("button", name="Save section").click()
    message = page.locator("#note-section-plan form .request-error")
    expect(message).to_contain_text("The server failed (error 500), so nothing was saved.")
    assert plan.input_value() == "Metformin 1000 mg twice daily; recheck HbA1c in 3 months."
    assert len(browser_drafts(page)) == 1
    # A picture of the message for a human to check how it reads.
    page.locator("#note-panel").screenshot(path=Path(tempfile.gettempdir()) / "review_save_error.png")

    monkeypatch.undo()
    page.get_by_role("button", name="Save section").click()
    page.locator("#note-section-plan .prose", has_text="recheck HbA1c in 3 months").wait_for()
    assert current_version(case=case, kind=ArtefactKind.NOTE).content["plan"].startswith("Metformin 1000 mg")
    assert browser_drafts(page) == []


def test_an_expired_session_during_a_save_leads_to_login_and_back_with_the_text(open_session, live_server):
    clinician = ClinicianFactory()
    case = case_in_review()
    page = open_session(clinician)
    page.goto(live_server.url + item_path(case))
    open_section_editor(page, "plan", "Typed while the session ran out.")
    Session.objects.all().delete()
    page.get_by_role("button", name="Save section").click()
    # The whole page goes to the login form (never the login form inside the panel)...
    page.wait_for_url(re.compile(r"/login/\?next="))
    assert page.locator("#note-panel").count() == 0
    page.fill("#id_username", clinician.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    # ...which returns to the item, where the editor opens again with the text.
    page.wait_for_url(re.compile(re.escape(item_path(case)) + "$"))
    plan = page.locator("#note-section-plan textarea")
    expect(plan).to_have_value("Typed while the session ran out.")
    expect(page.locator("#note-section-plan .draft-hint")).to_contain_text("Restored unsaved text")
    assert case.versions.filter(kind=ArtefactKind.NOTE).count() == 1  # nothing was saved yet
    page.get_by_role("button", name="Save section").click()
    page.locator("#note-section-plan .prose", has_text="Typed while the session ran out.").wait_for()
    assert browser_drafts(page) == []


def test_a_reload_restores_unsaved_text_and_cancel_forgets_it(open_session, live_server):
    case = case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    open_section_editor(page, "plan", "An unsaved plan.")
    page.get_by_role("link", name="Edit turn 2").click()
    page.locator("#turn-1 textarea").fill("An unsaved turn.")
    page.select_option("#decision-form select[name=reason]", "factually_wrong")
    page.locator("#decision-form textarea[name=comment]").fill("An unsaved reason to reject.")
    page.reload()
    expect(page.locator("#note-section-plan textarea")).to_have_value("An unsaved plan.")
    expect(page.locator("#turn-1 textarea")).to_have_value("An unsaved turn.")
    expect(page.locator("#decision-form textarea[name=comment]")).to_have_value("An unsaved reason to reject.")
    assert page.locator("#decision-form select[name=reason]").input_value() == "factually_wrong"
    expect(page.locator("#decision-form .draft-hint")).to_contain_text("Restored unsaved text")
    # Cancel means "throw it away": after it, a reload brings back only the others.
    page.locator("#note-section-plan").get_by_role("link", name="Cancel").click()
    page.wait_for_load_state()
    expect(page.locator("#turn-1 textarea")).to_have_value("An unsaved turn.")
    assert page.locator("#note-section-plan textarea").count() == 0
    assert case.versions.count() == 3  # scenario, note and dialogue as generated: nothing saved


def test_a_half_written_reject_comment_survives_an_inline_save(open_session, live_server):
    case = case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    page.select_option("#decision-form select[name=reason]", "factually_wrong")
    page.locator("#decision-form textarea[name=comment]").fill("The dose in the plan is")
    page.locator("#regenerate-form textarea[name=comment]").fill("Shorter dialogue,")
    open_section_editor(page, "plan", "Metformin 1000 mg twice daily.")
    page.get_by_role("button", name="Save section").click()
    page.locator("#note-section-plan .prose", has_text="1000 mg").wait_for()
    assert page.locator("#decision-form textarea[name=comment]").input_value() == "The dose in the plan is"
    assert page.locator("#decision-form select[name=reason]").input_value() == "factually_wrong"
    assert page.locator("#regenerate-form textarea[name=comment]").input_value() == "Shorter dialogue,"
    # The forms now name the new version, so a decision is about what is on screen.
    assert page.locator("#decision-form input[name=seen_note]").input_value() == "2"
    assert page.locator("#regenerate-form input[name=seen_note]").input_value() == "2"
    expect(page.locator("#note-heading")).to_contain_text("v2")


def test_two_turn_editors_stay_open_and_both_save(open_session, live_server):
    case = case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    page.get_by_role("link", name="Edit turn 1").click()
    first = page.locator("#turn-0 textarea")
    first.fill("Hello, what brings you in?")
    page.get_by_role("link", name="Edit turn 3").click()
    third = page.locator("#turn-2 textarea")
    third.fill("Your HbA1c is 8.1 percent; we'll start metformin.")
    assert first.input_value() == "Hello, what brings you in?"
    # Moving a turn would renumber the open editors: it waits until they are saved.
    page.get_by_role("button", name="Move up (turn 2)").click()
    expect(page.locator("#turn-1 .request-error")).to_contain_text("Save or cancel the open turn first")
    page.locator("#turn-2").get_by_role("button", name="Save turn").click()
    page.locator("#turn-2 .turn-text", has_text="8.1 percent;").wait_for()
    assert first.input_value() == "Hello, what brings you in?"
    page.locator("#turn-0").get_by_role("button", name="Save turn").click()
    page.locator("#turn-0 .turn-text", has_text="Hello, what brings").wait_for()
    turns = current_version(case=case, kind=ArtefactKind.DIALOGUE).content["turns"]
    assert [turns[0]["text"], turns[2]["text"]] == [
        "Hello, what brings you in?",
        "Your HbA1c is 8.1 percent; we'll start metformin.",
    ]
    assert not case.versions.filter(source=VersionSource.HUMAN_DRAFT).exists()  # neither save was a conflict
    assert browser_drafts(page) == []
    # With no editor open, moving a turn that was not redrawn works, on top of both saves.
    page.get_by_role("button", name="Move down (turn 2)").click()
    page.locator("#turn-1 .turn-text", has_text="8.1 percent;").wait_for()
    assert not case.versions.filter(source=VersionSource.HUMAN_DRAFT).exists()


def test_two_section_saves_leave_one_note_panel(open_session, live_server):
    case = case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(live_server.url + item_path(case))
    open_section_editor(page, "plan", "Plan, edited.")
    open_section_editor(page, "assessment", "Assessment, edited.")
    for section, text in (("plan", "Plan, edited."), ("assessment", "Assessment, edited.")):
        page.locator(f"#note-section-{section}").get_by_role("button", name="Save section").click()
        page.locator(f"#note-section-{section} .prose", has_text=text).wait_for()
    assert page.locator("#note-panel").count() == 1
    assert page.locator("#note-section-plan").count() == 1
    expect(page.locator("#note-heading")).to_contain_text("v3")
    note = current_version(case=case, kind=ArtefactKind.NOTE)
    assert (note.content["plan"], note.content["assessment"]) == ("Plan, edited.", "Assessment, edited.")
