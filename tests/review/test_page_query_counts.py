"""Every review page, and the admin lists of decisions and versions, makes as many queries with
many cases as with few: nothing on them is fetched row by row."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import REVIEW_STAGE_BY_STATUS, AgentCall, AgentName, Case, PipelineStep, StepStatus
from generation.selectors import current_versions
from review.models import RejectReason, ReviewAction, ReviewDecision, ReviewerAssignment
from review.selectors import QUEUE_LABELS
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review

pytestmark = pytest.mark.django_db


CLINICIAN_PAGES = ("home", "survey", "queue scenario", "queue note", "queue dialogue", "queue pair", "queue mine",
                   "item", "history")  # fmt: skip


def _decide(case: Case, reviewer: User, action: str) -> None:
    refusal = {"reason": RejectReason.OTHER, "comment": "Not usable."} if action == ReviewAction.REJECT else {}
    versions = {f"{kind}_version": version for kind, version in current_versions(case=case).items()}
    ReviewDecision.objects.create(
        case=case, stage=REVIEW_STAGE_BY_STATUS[case.status], reviewer=reviewer, action=action, **refusal, **versions
    )


def _add_cases(per_status: int, *, reviewers: list[User], assignee: User) -> dict[str, Case]:
    """`per_status` more cases in every review status, each decided by every reviewer (the
    first approves, the others reject: a disagreement), assigned to `assignee`, with a step and a
    call; returns the
    first case of each status."""
    first: dict[str, Case] = {}
    for status, stage in REVIEW_STAGE_BY_STATUS.items():
        for _ in range(per_status):
            case = case_in_review(status)
            first.setdefault(status, case)
            for n, reviewer in enumerate(reviewers):
                _decide(case, reviewer, ReviewAction.APPROVE if n == 0 else ReviewAction.REJECT)
            ReviewerAssignment.objects.create(case=case, stage=stage, reviewer=assignee)
            PipelineStep.objects.create(case=case, agent=AgentName.SCENARIO_PROVIDER, status=StepStatus.SUCCEEDED)
            AgentCall.objects.create(
                case=case, agent=AgentName.SCENARIO_PROVIDER, endpoint_name="test", model="m", request_messages=[]
            )
    return first


def _review_pages(cases: dict[str, Case]) -> dict[str, str]:
    pages = {
        "home": reverse("review:home"),
        "agreement": reverse("review:agreement"),
        "survey": reverse("review:survey"),
        "survey results": reverse("review:survey-results"),
        "dashboards": reverse("review:dashboards"),
    }
    pages.update({f"queue {queue}": reverse("review:queue", args=[queue]) for queue in QUEUE_LABELS})
    for status, case in cases.items():
        pages[f"item {status}"] = reverse("review:item", args=[case.pk])
        pages[f"history {status}"] = reverse("review:history", args=[case.pk])
    return pages


def _query_counts(client: Client, pages: dict[str, str]) -> dict[str, int]:
    counts = {}
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, name
        counts[name] = len(captured)
    return counts


def test_every_review_page_makes_as_many_queries_with_many_cases_as_with_few(admin_member, admin_member_client):
    reviewers = [ClinicianFactory(), ClinicianFactory()]
    pages = _review_pages(_add_cases(1, reviewers=reviewers, assignee=admin_member))
    _query_counts(admin_member_client, pages)  # the first requests fill the caches (permissions, survey)
    few = _query_counts(admin_member_client, pages)
    _add_cases(4, reviewers=[*reviewers, ClinicianFactory()], assignee=admin_member)
    assert _query_counts(admin_member_client, pages) == few


def test_a_clinicians_queues_make_as_many_queries_with_many_cases_as_with_few(clinician, clinician_client):
    reviewers = [ClinicianFactory(), ClinicianFactory()]
    cases = _add_cases(1, reviewers=reviewers, assignee=clinician)
    pages = {name: url for name, url in _review_pages(cases).items() if name.startswith(CLINICIAN_PAGES)}
    _query_counts(clinician_client, pages)
    few = _query_counts(clinician_client, pages)
    _add_cases(4, reviewers=[*reviewers, ClinicianFactory()], assignee=clinician)
    assert _query_counts(clinician_client, pages) == few


ADMIN_LISTS = [
    "review/reviewdecision",
    "review/reviewerassignment",
    "generation/artefactversion",
    "generation/pipelinestep",
    "generation/agentcall",
    "generation/case",
]


@pytest.mark.parametrize("model", ADMIN_LISTS)
def test_the_admin_lists_of_review_records_make_as_many_queries_with_many_rows_as_with_few(model):
    superuser = User.objects.create_superuser("root", "root@example.org", "x")
    client = Client()
    client.force_login(superuser)
    reviewers = [ClinicianFactory(), ClinicianFactory()]
    _add_cases(1, reviewers=reviewers, assignee=superuser)
    url = f"/admin/{model}/"
    _query_counts(client, {model: url})
    few = _query_counts(client, {model: url})
    _add_cases(4, reviewers=[*reviewers, ClinicianFactory()], assignee=ClinicianFactory())
    assert _query_counts(client, {model: url}) == few
