"""Cases imported with their code to be assigned: a reviewer assigns the code on the item
screen (validated against the catalogue), and approval waits for it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import CaseStatus, CodeNotAssigned
from review import services
from review.models import CodeAssignment, ReviewAction
from review.services import ReviewError
from tests.factories import AdminFactory, ClinicianFactory, IcdCodeFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _catalogue(db):
    IcdCodeFactory(code="M54.5", description="Low back pain", is_billable=False, depth=2)
    for code in ("M54.50", "M54.51", "M54.59"):
        IcdCodeFactory(code=code, description=f"Low back pain ({code})", depth=3)


def _approve(case, reviewer):
    return services.review_decision_record(
        case=case, reviewer=reviewer, action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
    )


def test_approval_is_refused_until_the_case_has_a_code():
    case = case_in_review(code=None)
    reviewer = ClinicianFactory()

    with pytest.raises(ReviewError, match="no ICD-10-CM code yet"):
        _approve(case, reviewer)
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW

    services.case_code_assign(case=case, reviewer=reviewer, written="M54.50")
    _approve(case, reviewer)
    case.refresh_from_db()
    assert (case.status, case.code.code) == (CaseStatus.APPROVED, "M54.50")


def test_a_case_without_a_code_can_still_be_rejected():
    case = case_in_review(code=None)
    services.review_decision_record(
        case=case,
        reviewer=ClinicianFactory(),
        action=ReviewAction.REJECT,
        reason="coding_mismatch",
        comment="Not low back pain at all.",
        seen=seen(case),
        opened_at=None,
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.REJECTED


def test_an_adjudicator_cannot_approve_a_case_without_a_code_either():
    case = case_in_review(CaseStatus.PAIR_REVIEW, code=None)
    case.status = CaseStatus.ADJUDICATION
    case.save(update_fields=["status"])

    with pytest.raises(ReviewError, match="no ICD-10-CM code yet"):
        services.adjudication_record(
            case=case, adjudicator=AdminFactory(), action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
        )


def test_a_case_without_a_code_is_not_sent_to_the_agents():
    case = case_in_review(code=None)
    with pytest.raises(CodeNotAssigned):
        services.regeneration_request(
            case=case, reviewer=ClinicianFactory(), target="note", comment="Shorter.", seen=seen(case), opened_at=None
        )


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        ("M54.5", "M54.5 is not billable (it has more specific codes); use a billable code such as M54.50, M54.51"),
        ("Q99.999", "'Q99.999' is not in the current ICD-10-CM catalogue"),
        ("", "Type an ICD-10-CM code"),
    ],
)
def test_the_control_refuses_what_the_catalogue_cannot_bill(clinician_client, typed, refusal):
    case = case_in_review(code=None)

    response = clinician_client.post(
        f"{reverse('review:code-assign', args=[case.pk])}?queue=pair", {"code": typed}, **HTMX
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="code-panel"')
    assert refusal in body.replace("&#x27;", "'")
    case.refresh_from_db()
    assert case.code is None
    assert not CodeAssignment.objects.exists()


def test_the_control_assigns_a_billable_code_typed_without_the_dot(clinician_client, clinician):
    case = case_in_review(code=None)
    page = clinician_client.get(f"{reverse('review:item', args=[case.pk])}?queue=pair").content.decode()
    assert "code to be assigned" in page
    assert reverse("review:code-assign", args=[case.pk]) in page

    response = clinician_client.post(
        f"{reverse('review:code-assign', args=[case.pk])}?queue=pair", {"code": " m5459 "}, **HTMX
    )

    assert response.status_code == 200
    assert "M54.59" in response.content.decode()
    case.refresh_from_db()
    assert case.code.code == "M54.59"
    assignment = CodeAssignment.objects.get(case=case)
    assert (assignment.code.code, assignment.previous_code, assignment.assigned_by) == ("M54.59", None, clinician)


def test_the_queue_filter_lists_the_cases_waiting_for_a_code(clinician_client):
    uncoded, coded = case_in_review(code=None), case_in_review()

    page = clinician_client.get(reverse("review:queue", args=["pair"]), {"uncoded": "1"}).content.decode()

    assert f"/review/case/{uncoded.pk}/" in page
    assert f"/review/case/{coded.pk}/" not in page
