"""Blind until decided: before a reviewer has approved, rejected or edited in this round, no
other reviewer's name, verdict or comment reaches them: not on the item, its partials, the
version labels, the history, the provenance, nor through a query parameter. A skip is not
a decision. Admins see everything."""

import pytest
from django.urls import reverse

from generation.models import CaseStatus, PipelineStep
from generation.services.cases import case_transition
from review import selectors, services
from review.models import ReviewAction
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def item(client, case, queue="pair", **headers) -> str:
    return client.get(f"{reverse('review:item', args=[case.pk])}?queue={queue}", **headers).content.decode()


def history(client, case) -> str:
    return client.get(reverse("review:history", args=[case.pk])).content.decode()


def provenance(client, case) -> str:
    return client.get(reverse("review:provenance", args=[case.pk]), **HTMX).content.decode()


def decide(case, reviewer, action=ReviewAction.APPROVE, **extra):
    services.review_decision_record(
        case=case, reviewer=reviewer, action=action, seen=seen(case), opened_at=None, **extra
    )


@pytest.fixture
def rejected_by_someone_else():
    case = case_in_review(reviews_required=3)
    decide(
        case,
        ClinicianFactory(username="dr_secret"),
        ReviewAction.REJECT,
        reason="other",
        comment="SECRET-OPINION",
    )
    return case


def test_a_skip_does_not_lift_the_blind(clinician, clinician_client, rejected_by_someone_else):
    case = rejected_by_someone_else
    decide(case, clinician, ReviewAction.SKIP)
    for page in (item(clinician_client, case), history(clinician_client, case)):
        assert "SECRET-OPINION" not in page
        assert "dr_secret" not in page


def test_a_skip_is_not_a_decision(clinician, rejected_by_someone_else):
    case = rejected_by_someone_else
    decide(case, clinician, ReviewAction.SKIP)
    assert not selectors.reviewer_has_decided(case=case, reviewer=clinician)
    decide(case, clinician)  # a skipper may come back and decide
    assert selectors.reviewer_has_decided(case=case, reviewer=clinician)


def test_deciding_lifts_the_blind(clinician, clinician_client, rejected_by_someone_else):
    case = rejected_by_someone_else
    decide(case, clinician)
    assert "SECRET-OPINION" in history(clinician_client, case)


def test_editing_lifts_the_blind(clinician, clinician_client, rejected_by_someone_else):
    case = rejected_by_someone_else
    services.note_section_edit(case=case, author=clinician, section="plan", text="My plan.", base_number=1)
    assert "SECRET-OPINION" in item(clinician_client, case)


def test_the_editors_name_is_hidden_in_version_labels_and_history(clinician_client, admin_member_client):
    case = case_in_review(reviews_required=2)
    services.note_section_edit(
        case=case, author=ClinicianFactory(username="dr_editor"), section="plan", text="New plan.", base_number=1
    )
    for page in (
        item(clinician_client, case),
        item(clinician_client, case, **HTMX),
        history(clinician_client, case),
        clinician_client.get(f"{reverse('review:history', args=[case.pk])}?kind=note&a=1&b=2", **HTMX).content.decode(),
    ):
        assert "v2" in page
        assert "dr_editor" not in page
    assert "dr_editor" in item(admin_member_client, case)
    assert "dr_editor" in history(admin_member_client, case)


def test_a_conflicting_edit_does_not_name_the_other_editor(clinician, clinician_client):
    case = case_in_review(reviews_required=2)
    services.note_section_edit(
        case=case, author=ClinicianFactory(username="dr_other"), section="plan", text="Theirs.", base_number=1
    )
    response = clinician_client.post(
        reverse("review:note-section-edit", args=[case.pk, "plan"]), {"base_number": 1, "text": "Mine."}, **HTMX
    )
    body = response.content.decode()
    assert "saved version 2 while you were editing" in body
    assert "dr_other" not in body


def test_the_regeneration_comment_is_hidden_in_the_provenance(
    clinician, clinician_client, admin_member_client, django_capture_on_commit_callbacks
):
    case = case_in_review(CaseStatus.NOTE_REVIEW, reviews_required=2)
    with django_capture_on_commit_callbacks(execute=False):
        services.regeneration_request(
            case=case,
            reviewer=ClinicianFactory(username="dr_regen"),
            target="note",
            comment="SECRET-FEEDBACK",
            seen=seen(case),
            opened_at=None,
        )
    case.refresh_from_db()
    case_transition(case=case, to=CaseStatus.NOTE_REVIEW)
    assert PipelineStep.objects.filter(case=case, feedback="SECRET-FEEDBACK").exists()
    for page in (provenance(clinician_client, case), item(clinician_client, case, queue="note")):
        assert "SECRET-FEEDBACK" not in page
        assert "dr_regen" not in page
    assert "SECRET-FEEDBACK" in provenance(admin_member_client, case)
    decide(case, clinician)
    assert "SECRET-FEEDBACK" in provenance(clinician_client, case)


def test_the_adjudication_query_parameter_reveals_no_disputed_case(clinician_client):
    open_case = case_in_review()
    disputed = case_in_review(CaseStatus.ADJUDICATION)
    page = item(clinician_client, open_case, queue="adjudication")
    assert f"{reverse('review:item', args=[disputed.pk])}?" not in page
    assert "?queue=adjudication" not in page


def test_an_admin_sees_every_name_and_verdict(admin_member_client, rejected_by_someone_else):
    page = item(admin_member_client, rejected_by_someone_else)
    assert "SECRET-OPINION" in page
    assert "dr_secret" in page
