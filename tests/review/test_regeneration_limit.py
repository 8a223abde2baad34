"""A clinician may send at most REGENERATIONS_PER_HOUR items back for regeneration per hour
(each costs LLM calls); admins, who can launch whole batches, are exempt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generation.models import CaseStatus
from review import services
from review.models import ReviewAction, ReviewDecision
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen, seen_post

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _two_per_hour(settings):
    settings.REGENERATIONS_PER_HOUR = 2


def regenerate(case, reviewer):
    return services.regeneration_request(
        case=case, reviewer=reviewer, target="note", comment="Use mmol/mol.", seen=seen(case), opened_at=None
    )


def test_a_clinician_is_refused_past_the_hourly_limit_and_nothing_changes(
    clinician, django_capture_on_commit_callbacks
):
    first, second, third = (case_in_review(CaseStatus.NOTE_REVIEW) for _ in range(3))
    with django_capture_on_commit_callbacks(execute=False):
        regenerate(first, clinician)
        regenerate(second, clinician)

        with pytest.raises(services.RegenerationLimitReached) as refused:
            regenerate(third, clinician)

    assert str(refused.value) == (
        "You have sent 2 items back for regeneration in the last hour, the most a reviewer may (each one costs "
        "model time). You can send the next one in 60 minutes; meanwhile approve, edit or reject."
    )
    third.refresh_from_db()
    assert third.status == CaseStatus.NOTE_REVIEW
    assert not third.steps.exists()
    assert ReviewDecision.objects.filter(action=ReviewAction.REGENERATE).count() == 2


def test_regenerations_older_than_an_hour_no_longer_count(clinician, django_capture_on_commit_callbacks):
    first, second, third = (case_in_review(CaseStatus.NOTE_REVIEW) for _ in range(3))
    with django_capture_on_commit_callbacks(execute=False):
        regenerate(first, clinician)
        regenerate(second, clinician)
        # The first one was asked for 61 minutes ago, the second 20 minutes ago.
        ReviewDecision.objects.filter(case=first).update(created_at=timezone.now() - timedelta(minutes=61))
        ReviewDecision.objects.filter(case=second).update(created_at=timezone.now() - timedelta(minutes=20))

        regenerate(third, clinician)

        fourth = case_in_review(CaseStatus.NOTE_REVIEW)
        with pytest.raises(services.RegenerationLimitReached, match="You can send the next one in 40 minutes;"):
            regenerate(fourth, clinician)

    third.refresh_from_db()
    assert third.status == CaseStatus.NOTE_GENERATING


def test_each_clinician_has_a_limit_of_their_own(clinician, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(2):
            regenerate(case_in_review(CaseStatus.NOTE_REVIEW), clinician)
        regenerate(case_in_review(CaseStatus.NOTE_REVIEW), ClinicianFactory())

    assert ReviewDecision.objects.filter(action=ReviewAction.REGENERATE).count() == 3


def test_admins_are_not_limited(admin_member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(3):
            regenerate(case_in_review(CaseStatus.NOTE_REVIEW), admin_member)

    assert ReviewDecision.objects.filter(reviewer=admin_member, action=ReviewAction.REGENERATE).count() == 3


def test_a_limit_of_zero_turns_regeneration_off_for_clinicians(clinician, settings):
    settings.REGENERATIONS_PER_HOUR = 0
    case = case_in_review(CaseStatus.NOTE_REVIEW)

    with pytest.raises(services.RegenerationLimitReached, match="Reviewers cannot send items back for regeneration"):
        regenerate(case, clinician)


def test_the_item_screen_shows_the_limit_in_the_decision_panel(
    clinician, clinician_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(2):
            regenerate(case_in_review(CaseStatus.NOTE_REVIEW), clinician)
    case = case_in_review(CaseStatus.NOTE_REVIEW)

    response = clinician_client.post(
        f"{reverse('review:regenerate', args=[case.pk])}?queue=note",
        {"target": "note", "comment": "Shorter plan.", **seen_post(case)},
        **HTMX,
    )

    body = response.content.decode()
    assert body.lstrip().startswith('<section id="decision-panel"')
    assert "You have sent 2 items back for regeneration in the last hour" in body
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW
