"""The item screen marks the text a finding points at: a focusable <mark> with the message,
every piece auto-escaped."""

from __future__ import annotations

import pytest
from django.urls import reverse

from review import services
from review.highlighting import flagged_pieces
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review


def test_the_text_is_cut_at_the_spans_of_the_findings_that_point_into_it():
    dose = {"code": "coverage_unspoken", "message": "Not said", "spans": [[6, 12]], "span_kind": "note"}
    other = {"code": "placeholder", "message": "Placeholder", "spans": [[0, 3]], "span_kind": "dialogue"}
    wide = {"code": "soap_plan_no_action", "message": "No action", "spans": [[0, 16], [40, 50]]}
    pieces = flagged_pieces(text="Start 500 mg daily.", flags=[wide, dose, other], kind="note")
    assert pieces == [("Start ", wide), ("500 mg", dose), (" dai", wide), ("ly.", None)]


@pytest.mark.django_db
def test_a_flagged_span_is_marked_in_the_item_screen_and_escaped(clinician_client):
    case = case_in_review()
    services.note_section_edit(
        case=case, author=ClinicianFactory(), section="plan", text="Call <b>[Patient Name]</b> back.", base_number=1
    )
    page = clinician_client.get(f"{reverse('review:item', args=[case.pk])}?queue=pair").content.decode()
    mark = page.split('<mark class="finding severity-error" tabindex="0" data-check="placeholder"', 1)[1]
    assert mark.split(">", 1)[1].startswith("[Patient Name]</mark>")
    assert 'aria-label="placeholder: ' in mark.split(">", 1)[0]
    assert "&lt;b&gt;" in page
    assert "<b>[Patient Name]" not in page
