"""What one note-section save costs, whatever the section's length (up to the 20,000-character
limit): every check runs once on the note and the dialogue's cross-artefact checks once beside
it, and the save makes a fixed number of SQL statements (scripts/bench/note_save.py times it)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation import checks
from generation.models import Case
from generation.models.text_limits import NOTE_SECTION_MAX_CHARS
from tests.review.review_fixtures import case_in_review

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
NOTE_CHECKS = {
    "placeholder", "phi_like", "missing_section", "soap_thin_section", "soap_misplaced", "soap_plan_no_action",
    "demographics_mismatch", "code_demographics",
}  # fmt: skip
# What a note's text can change of the dialogue's findings.
DIALOGUE_CHECKS_BESIDE_A_NOTE = {
    "coverage_prescription_unspoken", "coverage_unspoken", "coverage_polarity", "coverage_note_omits",
    "demographics_mismatch",
}  # fmt: skip
# A save as the item screen makes it: session and user, access, the version write with the
# dialogue's findings, near-duplicate indexing of the note, the saved partial's context.
SAVE_STATEMENTS = 35


def long_plan() -> str:
    days = (f"Day {day}: continue metformin 500 mg twice daily and recheck HbA1c in 3 months." for day in range(1, 400))
    text = " ".join(days)[:NOTE_SECTION_MAX_CHARS]
    assert len(text) == NOTE_SECTION_MAX_CHARS
    return text


def save_plan(client, case: Case, text: str, capture, *, base: int = 1) -> int:
    """Save the case's plan over note version `base`; the SQL statements of the request and of
    what runs after its commit."""
    url = reverse("review:note-section-edit", args=[case.pk, "plan"])
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        response = client.post(url, {"base_number": base, "text": text}, **HTMX)
    assert response.status_code == 200
    assert case.versions.get(kind="note", number=base + 1).content["plan"] == text
    return len(queries)


def test_a_long_section_save_runs_each_check_once_per_artefact(
    clinician_client, monkeypatch, django_capture_on_commit_callbacks
):
    runs: Counter[tuple[str, str]] = Counter()
    run_check = checks.run_check

    def counted(check, subject):
        runs[(check.code, subject.kind)] += 1
        return run_check(check, subject)

    case = case_in_review()
    monkeypatch.setattr(checks, "run_check", counted)
    save_plan(clinician_client, case, long_plan(), django_capture_on_commit_callbacks)
    assert set(runs.values()) == {1}
    assert {code for code, kind in runs if kind == "note"} == NOTE_CHECKS
    assert {code for code, kind in runs if kind == "dialogue"} == DIALOGUE_CHECKS_BESIDE_A_NOTE


def test_a_long_section_save_makes_as_many_statements_as_a_short_one(
    clinician_client, django_capture_on_commit_callbacks
):
    case = case_in_review()  # the only case: no near-duplicate to store
    save_plan(clinician_client, case, "Start metformin.", django_capture_on_commit_callbacks)
    short = save_plan(clinician_client, case, "Start metformin 500 mg.", django_capture_on_commit_callbacks, base=2)
    long = save_plan(clinician_client, case, long_plan(), django_capture_on_commit_callbacks, base=3)
    assert short == long == SAVE_STATEMENTS
