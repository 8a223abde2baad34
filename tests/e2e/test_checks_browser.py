"""The automatic checks in a real browser: a finding's span is marked in the item screen with
its message, the queue lists only the cases a check flags, and a note edit refreshes coverage."""

from __future__ import annotations

import pytest

from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHECK = "coverage_prescription_unspoken"
# The sample note's plan starts metformin 500 mg; this dialogue never says it.
SILENT_ON_METFORMIN = {
    "turns": [
        {"speaker": "doctor", "text": "Hi, what brings you in today?"},
        {"speaker": "patient", "text": "I'm thirsty all the time, and I'm up at night to pee."},
        {"speaker": "doctor", "text": "Your HbA1c came back at 8.1 percent. We'll recheck it in 3 months."},
    ]
}


def test_a_finding_is_marked_the_queue_filters_by_it_and_a_note_edit_clears_it(open_session, live_server):
    flagged = case_in_review(dialogue=SILENT_ON_METFORMIN)
    covered = case_in_review()
    page = open_session(ClinicianFactory())

    page.goto(f"{live_server.url}/review/queue/pair/")
    page.locator("#queue-table", has_text="2 cases waiting.").wait_for()
    page.select_option("#id_check", CHECK)  # the filter applies on change (HTMX) and goes into the URL
    page.wait_for_url(f"**check={CHECK}**")
    page.locator("#queue-table", has_text="1 case waiting.").wait_for()
    assert page.locator("#queue-table tbody tr").count() == 1
    assert page.locator(f'a[href*="/review/case/{flagged.pk}/"]').count() >= 1
    assert page.locator(f'a[href*="/review/case/{covered.pk}/"]').count() == 0

    page.goto(f"{live_server.url}/review/case/{flagged.pk}/?queue=pair")
    mark = page.locator(f'[data-checked-kind="note"] mark[data-check="{CHECK}"]').first
    mark.wait_for()
    assert "500 mg" in mark.inner_text() or "metformin" in mark.inner_text().lower()
    assert mark.get_attribute("title").startswith(f"{CHECK}: ")
    mark.focus()  # the message is reachable from the keyboard, not only on hover
    assert page.evaluate("document.activeElement.dataset.check") == CHECK

    # The clinician takes the prescription out of the plan: nothing in the note is left unsaid.
    page.get_by_role("link", name="Edit plan").click()
    page.locator("#note-section-plan textarea").fill("Recheck HbA1c in 3 months.")
    saving = "/note/plan/edit/"
    with page.expect_response(lambda r: saving in r.url and r.request.method == "POST") as saved:
        page.get_by_role("button", name="Save section").click()
    assert saved.value.status == 200
    page.locator("#note-section-plan textarea").wait_for(state="detached")
    page.locator("#note-section-plan", has_text="Recheck HbA1c in 3 months.").wait_for()
    page.reload()
    page.locator("#note-section-plan").wait_for()
    assert page.locator(f'mark[data-check="{CHECK}"]').count() == 0

    page.goto(f"{live_server.url}/review/queue/pair/?check={CHECK}")
    page.locator("#queue-table", has_text="0 cases waiting.").wait_for()
