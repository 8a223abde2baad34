"""Adjudication is an admin's job: a clinician may neither decide, edit nor regenerate a
disputed case (a pair awaiting adjudication, or a gated stage whose reviews disagree), and
its item screen shows them none of those controls."""

import pytest
from django.urls import reverse

from generation.models import CaseStatus
from review import services
from review.models import ReviewAction, ReviewDecision
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen, seen_post

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _decide(case, action, **extra):
    services.review_decision_record(
        case=case, reviewer=ClinicianFactory(), action=action, seen=seen(case), opened_at=None, **extra
    )


def split_gated_note():
    """A gated note whose two required reviews disagree: it waits for an adjudicator."""
    case = case_in_review(CaseStatus.NOTE_REVIEW, reviews_required=2)
    _decide(case, ReviewAction.APPROVE)
    _decide(case, ReviewAction.REJECT, reason="other", comment="No.")
    case.refresh_from_db()
    return case


@pytest.fixture(params=["pair awaiting adjudication", "split gated note"])
def disputed(request, db):
    if request.param == "pair awaiting adjudication":
        return case_in_review(CaseStatus.ADJUDICATION)
    return split_gated_note()


def test_a_clinician_cannot_decide_a_disputed_case(clinician_client, disputed):
    decisions_before = ReviewDecision.objects.count()
    response = clinician_client.post(
        reverse("review:decide", args=[disputed.pk]), {"action": "approve", **seen_post(disputed)}, **HTMX
    )
    assert response.status_code == 403
    assert ReviewDecision.objects.count() == decisions_before


def test_a_clinician_cannot_edit_a_disputed_case(clinician_client, disputed):
    url = reverse("review:note-section-edit", args=[disputed.pk, "plan"])
    assert clinician_client.get(url, **HTMX).status_code == 403
    response = clinician_client.post(url, {"base_number": 1, "text": "My plan."}, **HTMX)
    assert response.status_code == 403
    assert disputed.versions.filter(kind="note").count() == 1


def test_a_clinician_cannot_edit_the_dialogue_of_a_pair_awaiting_adjudication(clinician_client):
    case = case_in_review(CaseStatus.ADJUDICATION)
    edit = reverse("review:turn-edit", args=[case.pk, 0, "edit"])
    assert clinician_client.get(edit, **HTMX).status_code == 403
    assert clinician_client.post(edit, {"base_number": 1, "speaker": "doctor", "text": "Hi."}).status_code == 403
    move = reverse("review:turn-move", args=[case.pk, 0, "down"])
    assert clinician_client.post(move, {"base_number": 1}, **HTMX).status_code == 403
    assert case.versions.filter(kind="dialogue").count() == 1


def test_a_clinician_cannot_regenerate_a_disputed_case(clinician_client, disputed):
    status = disputed.status
    response = clinician_client.post(
        reverse("review:regenerate", args=[disputed.pk]),
        {"target": "note", "comment": "Rewrite it.", **seen_post(disputed)},
        **HTMX,
    )
    assert response.status_code == 403
    disputed.refresh_from_db()
    assert disputed.status == status


def test_the_services_refuse_a_clinicians_edit_of_a_disputed_case(clinician, disputed):
    with pytest.raises(services.ReviewError, match="adjudication"):
        services.note_section_edit(case=disputed, author=clinician, section="plan", text="x", base_number=1)


def test_the_item_screen_shows_a_clinician_no_controls_on_a_disputed_case(clinician_client, disputed):
    body = clinician_client.get(reverse("review:item", args=[disputed.pk])).content.decode()
    assert "data-edit" not in body
    assert reverse("review:decide", args=[disputed.pk]) not in body
    assert reverse("review:regenerate", args=[disputed.pk]) not in body
    assert reverse("review:note-section-edit", args=[disputed.pk, "plan"]) not in body


def test_an_admin_edits_and_adjudicates_a_disputed_case(admin_member_client, disputed):
    page = admin_member_client.get(reverse("review:item", args=[disputed.pk])).content.decode()
    assert reverse("review:adjudicate", args=[disputed.pk]) in page
    assert "data-edit" in page
    url = reverse("review:note-section-edit", args=[disputed.pk, "plan"])
    assert admin_member_client.post(url, {"base_number": 1, "text": "Admin's plan."}, **HTMX).status_code == 200
    assert disputed.versions.filter(kind="note").count() == 2
