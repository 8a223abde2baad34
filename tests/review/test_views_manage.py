import pytest
from django.urls import reverse

from review import services
from review.models import Guideline, ReviewAction
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db


def test_agreement_page_reports_kappa_with_counts_and_a_small_sample_note(admin_member_client):
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    verdicts = [("approve", "approve"), ("approve", "reject"), ("reject", "reject"), ("approve", "approve")]
    for first, second in verdicts:
        case = case_in_review(reviews_required=2)
        for reviewer, action in ((ann, first), (bob, second)):
            extra = {"reason": "other", "comment": "no"} if action == ReviewAction.REJECT else {}
            services.review_decision_record(
                case=case, reviewer=reviewer, action=action, seen=seen(case), opened_at=None, **extra
            )
    body = admin_member_client.get(reverse("review:agreement")).content.decode()
    assert "Cohen&#x27;s kappa: ann × bob" in body
    assert "0.500" in body  # po = 3/4, pe = 1/2
    assert "Only 4 overlapping item(s)" in body
    assert "Fleiss" in body
    assert "Krippendorff" in body


def test_guidelines_are_rendered_sanitised_and_editable_by_admins(admin_member, admin_member_client, clinician_client):
    guideline = Guideline.objects.create(title="Doses", body_markdown="Check **doses**.<script>alert(1)</script>")
    case = case_in_review()
    item = clinician_client.get(reverse("review:item", args=[case.pk])).content.decode()
    assert "<strong>doses</strong>" in item
    assert "<script>alert(1)" not in item
    response = admin_member_client.post(
        reverse("review:guideline-edit", args=[guideline.pk]),
        {"title": "Doses and units", "body_markdown": "Use **mg**."},
    )
    assert response.status_code == 302
    guideline.refresh_from_db()
    assert (guideline.title, guideline.updated_by) == ("Doses and units", admin_member)
