"""Every review URL, for every role: anonymous users go to the login page, a user
without a role gets 403, clinicians reach the review screens, admins everything."""

import pytest
from django.test import Client
from django.urls import reverse

from generation.models import CaseStatus
from review.models import Guideline
from tests.factories import UserFactory
from tests.review.review_fixtures import case_in_review

CLINICIAN, ADMIN = "clinician", "admin"


def review_urls(case_id: int, guideline_id: int) -> list[tuple[str, str, dict, str]]:
    """(method, url, data, least role that may use it)."""
    case = [case_id]
    return [
        ("get", reverse("review:home"), {}, CLINICIAN),
        ("get", reverse("review:queue", args=["note"]), {}, CLINICIAN),
        ("get", reverse("review:queue", args=["pair"]), {}, CLINICIAN),
        ("get", reverse("review:queue", args=["mine"]), {}, CLINICIAN),
        ("get", reverse("review:queue", args=["adjudication"]), {}, ADMIN),
        ("post", reverse("review:queue-assign", args=["pair"]), {}, ADMIN),
        ("get", reverse("review:item", args=case), {}, CLINICIAN),
        ("post", reverse("review:decide", args=case), {"action": "reject"}, CLINICIAN),
        ("post", reverse("review:adjudicate", args=case), {"action": "reject"}, ADMIN),
        ("post", reverse("review:regenerate", args=case), {"target": "note"}, CLINICIAN),
        ("get", reverse("review:regeneration-status", args=case), {}, CLINICIAN),
        ("post", reverse("review:assign", args=case), {}, ADMIN),
        ("post", reverse("review:code-assign", args=case), {}, CLINICIAN),
        ("get", reverse("review:note-section-edit", args=[case_id, "plan"]), {}, CLINICIAN),
        ("post", reverse("review:note-section-edit", args=[case_id, "plan"]), {}, CLINICIAN),
        ("get", reverse("review:turn-edit", args=[case_id, 0, "edit"]), {}, CLINICIAN),
        ("get", reverse("review:turn-edit", args=[case_id, 0, "insert"]), {}, CLINICIAN),
        ("post", reverse("review:turn-move", args=[case_id, 0, "down"]), {}, CLINICIAN),
        ("get", reverse("review:history", args=case), {}, CLINICIAN),
        ("get", reverse("review:provenance", args=case), {}, CLINICIAN),
        ("get", reverse("review:survey"), {}, CLINICIAN),
        ("get", reverse("review:survey-results"), {}, CLINICIAN),
        ("post", reverse("review:survey-publish"), {}, ADMIN),
        ("get", reverse("review:agreement"), {}, ADMIN),
        ("get", reverse("review:dashboards"), {}, CLINICIAN),
        ("get", reverse("review:dashboard-figure", args=["throughput"]), {}, CLINICIAN),
        ("get", reverse("review:dashboard-figure", args=["funnel"]), {}, ADMIN),
        ("get", reverse("review:dashboard-csv", args=["throughput"]), {}, CLINICIAN),
        ("get", reverse("review:dashboard-csv", args=["cost"]), {}, ADMIN),
        ("get", reverse("review:guidelines"), {}, ADMIN),
        ("get", reverse("review:guideline-edit", args=[guideline_id]), {}, ADMIN),
    ]


@pytest.fixture
def urls(db):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    guideline = Guideline.objects.create(title="Doses", body_markdown="Check **doses**.")
    return review_urls(case.pk, guideline.pk)


def call(client: Client, method: str, url: str, data: dict):
    return getattr(client, method)(url, data)


def reached(status: int) -> bool:
    """The view let the user in: it answered, or refused the incomplete form with a 400."""
    return status <= 400


def test_the_matrix_covers_every_review_url(urls):
    from django.urls import resolve

    from review import urls as review_urlconf

    covered = {resolve(url).url_name for _method, url, _data, _role in urls}
    assert covered == {pattern.name for pattern in review_urlconf.urlpatterns}


def test_anonymous_users_are_sent_to_the_login_page(client, urls):
    for method, url, data, _role in urls:
        response = call(client, method, url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_a_user_without_a_role_is_refused_everywhere(client, urls):
    client.force_login(UserFactory())
    for method, url, data, _role in urls:
        assert call(client, method, url, data).status_code == 403, url


def test_clinicians_reach_review_screens_but_not_admin_ones(clinician_client, urls):
    for method, url, data, role in urls:
        status = call(clinician_client, method, url, data).status_code
        if role == ADMIN:
            assert status == 403, url
        else:
            assert reached(status), (url, status)


def test_admins_reach_every_review_url(admin_member_client, urls):
    for method, url, data, _role in urls:
        status = call(admin_member_client, method, url, data).status_code
        assert reached(status), (url, status)
