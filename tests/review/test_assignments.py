"""Assignments bind: once a case's stage has assignees, only they and admins decide or edit
it; a batch may require assignment, and then its unassigned cases wait in no clinician's
queue. Admins assign a filtered queue in one go: round-robin, by chapter or by specialty."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from generation.models import CaseStatus, GenerationBatch, PhysicianRole
from review import selectors, services
from review.models import ReviewAction, ReviewDecision, ReviewerAssignment
from tests.factories import ClinicianFactory, GenerationBatchFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import make_endpoint
from tests.llm_replay import llm_replay, models_response
from tests.review.review_fixtures import case_in_review, seen, seen_post

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def in_queue(case, reviewer, queue="pair", can_adjudicate=False) -> bool:
    cases = selectors.case_queue_for_reviewer(
        reviewer=reviewer, queue=queue, filters=selectors.QueueFilters(), can_adjudicate=can_adjudicate
    )
    return cases.filter(pk=case.pk).exists()


@pytest.fixture
def assigned_to_someone_else(admin_member):
    case = case_in_review()
    services.reviewers_assign(case=case, stage="pair", reviewers=[ClinicianFactory()], assigned_by=admin_member)
    return case


def test_a_clinician_cannot_decide_a_case_assigned_to_someone_else(clinician_client, assigned_to_someone_else):
    case = assigned_to_someone_else
    response = clinician_client.post(
        reverse("review:decide", args=[case.pk]), {"action": "approve", **seen_post(case)}, **HTMX
    )
    assert response.status_code == 403
    assert not ReviewDecision.objects.filter(case=case).exists()


def test_a_clinician_cannot_edit_or_regenerate_a_case_assigned_to_someone_else(
    clinician_client, assigned_to_someone_else
):
    case = assigned_to_someone_else
    edit = reverse("review:note-section-edit", args=[case.pk, "plan"])
    assert clinician_client.post(edit, {"base_number": 1, "text": "Mine."}, **HTMX).status_code == 403
    regenerate = reverse("review:regenerate", args=[case.pk])
    response = clinician_client.post(regenerate, {"target": "note", "comment": "Redo.", **seen_post(case)}, **HTMX)
    assert response.status_code == 403
    case.refresh_from_db()
    assert (case.status, case.versions.count()) == (CaseStatus.PAIR_REVIEW, 3)


def test_the_assignee_and_admins_decide_an_assigned_case(clinician, admin_member, admin_member_client):
    case = case_in_review(reviews_required=2)
    services.reviewers_assign(case=case, stage="pair", reviewers=[clinician], assigned_by=admin_member)
    services.review_decision_record(
        case=case, reviewer=clinician, action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
    )
    response = admin_member_client.post(
        reverse("review:decide", args=[case.pk]), {"action": "approve", **seen_post(case)}, **HTMX
    )
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.status == CaseStatus.APPROVED


def test_an_assigned_case_leaves_other_clinicians_queues(clinician, assigned_to_someone_else, admin_member):
    case = assigned_to_someone_else
    assert not in_queue(case, clinician)
    assert in_queue(case, admin_member, can_adjudicate=True)
    assignee = ReviewerAssignment.objects.get(case=case).reviewer
    assert in_queue(case, assignee)
    assert in_queue(case, assignee, queue="mine")


def test_an_assignment_for_another_stage_does_not_bind_this_one(clinician, admin_member):
    case = case_in_review()
    services.reviewers_assign(case=case, stage="note", reviewers=[ClinicianFactory()], assigned_by=admin_member)
    assert in_queue(case, clinician)
    services.review_decision_record(
        case=case, reviewer=clinician, action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
    )


def test_a_batch_that_requires_assignment_keeps_unassigned_cases_from_clinicians(
    clinician, clinician_client, admin_member
):
    case = case_in_review(batch=GenerationBatchFactory(config={"assignment_required": True}))
    assert not in_queue(case, clinician)
    assert in_queue(case, admin_member, can_adjudicate=True)
    response = clinician_client.post(
        reverse("review:decide", args=[case.pk]), {"action": "approve", **seen_post(case)}, **HTMX
    )
    assert response.status_code == 403
    services.reviewers_assign(case=case, stage="pair", reviewers=[clinician], assigned_by=admin_member)
    assert in_queue(case, clinician)


def test_the_item_screen_hides_the_controls_from_a_clinician_who_is_not_assigned(
    clinician_client, assigned_to_someone_else
):
    case = assigned_to_someone_else
    body = clinician_client.get(reverse("review:item", args=[case.pk])).content.decode()
    assert "data-edit" not in body
    assert reverse("review:decide", args=[case.pk]) not in body


# --- Bulk assignment -----------------------------------------------------------------


def _assigned(cases) -> list[list[str]]:
    return [
        sorted(ReviewerAssignment.objects.filter(case=case).values_list("reviewer__username", flat=True))
        for case in cases
    ]


def test_round_robin_assigns_the_queue_in_turn(admin_member):
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    cases = [case_in_review() for _ in range(4)]
    created = services.queue_assign(
        cases=selectors.cases_to_assign(stage="pair", filters=selectors.QueueFilters()),
        stage="pair",
        reviewers=[ann, bob],
        mode="round_robin",
        assigned_by=admin_member,
    )
    assert len(created) == 4
    assert _assigned(cases) == [["ann"], ["bob"], ["ann"], ["bob"]]


def test_each_case_gets_as_many_assignees_as_it_needs_reviews(admin_member):
    ann, bob, cy = (ClinicianFactory(username=name) for name in ("ann", "bob", "cy"))
    cases = [case_in_review(reviews_required=2) for _ in range(3)]
    services.queue_assign(
        cases=cases, stage="pair", reviewers=[ann, bob, cy], mode="round_robin", assigned_by=admin_member
    )
    assert _assigned(cases) == [["ann", "bob"], ["ann", "cy"], ["bob", "cy"]]


def test_by_chapter_gives_each_chapter_to_one_reviewer(admin_member):
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    lungs = [case_in_review(code=IcdCodeFactory(code=f"J4{n}.0", chapter="10")) for n in range(3)]
    sugar = [case_in_review(code=IcdCodeFactory(code=f"E1{n}.0", chapter="4")) for n in range(2)]
    services.queue_assign(
        cases=[*lungs, *sugar], stage="pair", reviewers=[ann, bob], mode="chapter", assigned_by=admin_member
    )
    assert _assigned(lungs) == [["ann"], ["ann"], ["ann"]]
    assert _assigned(sugar) == [["bob"], ["bob"]]


def test_by_specialty_gives_each_physician_role_to_one_reviewer(admin_member):
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    cardiology, _ = PhysicianRole.objects.get_or_create(name="Cardiologist")
    heart = [case_in_review(role=cardiology) for _ in range(2)]
    family = [case_in_review() for _ in range(3)]
    services.queue_assign(
        cases=[*heart, *family], stage="pair", reviewers=[ann, bob], mode="specialty", assigned_by=admin_member
    )
    assert _assigned(family) == [["ann"], ["ann"], ["ann"]]
    assert _assigned(heart) == [["bob"], ["bob"]]


def test_the_queue_page_assigns_the_filtered_queue(admin_member_client):
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    lungs = [case_in_review(code=IcdCodeFactory(code=f"J4{n}.0", chapter="10")) for n in range(2)]
    other = case_in_review(code=IcdCodeFactory(code="E11.9", chapter="4"))
    already = case_in_review(code=IcdCodeFactory(code="J47.0", chapter="10"))
    ReviewerAssignment.objects.create(case=already, stage="pair", reviewer=ClinicianFactory(username="cy"))
    page = admin_member_client.get(reverse("review:queue", args=["pair"]) + "?chapter=10").content.decode()
    assert reverse("review:queue-assign", args=["pair"]) in page

    response = admin_member_client.post(
        reverse("review:queue-assign", args=["pair"]) + "?chapter=10",
        {"reviewers": [ann.pk, bob.pk], "mode": "round_robin"},
    )

    assert response.status_code == 302
    assert _assigned([*lungs, other, already]) == [["ann"], ["bob"], [], ["cy"]]


def test_clinicians_cannot_assign_a_queue(clinician_client, clinician):
    case = case_in_review()
    page = clinician_client.get(reverse("review:queue", args=["pair"])).content.decode()
    assert reverse("review:queue-assign", args=["pair"]) not in page
    response = clinician_client.post(
        reverse("review:queue-assign", args=["pair"]), {"reviewers": [clinician.pk], "mode": "round_robin"}
    )
    assert response.status_code == 403
    assert not ReviewerAssignment.objects.filter(case=case).exists()


# --- The per-batch setting -----------------------------------------------------------


def test_the_launch_form_and_the_command_can_require_assignment(admin_member_client):
    endpoint = make_endpoint(is_default=True)
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    with llm_replay([models_response(["test-model"]), models_response(["test-model"])]):
        admin_member_client.post(
            reverse("generation:batch-confirm"),
            {
                "codes": "I10",
                "pairs_per_code": 1,
                "endpoint": endpoint.pk,
                "reviews_required": 1,
                "assignment_required": "on",
            },
        )
        call_command("generate", "--codes", "I10", "--assignment-required", stdout=StringIO())
    assert [batch.config.get("assignment_required") for batch in GenerationBatch.objects.order_by("id")] == [True, True]
