from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import CaseStatus, GenerationBatch
from generation.services.pipeline import case_start
from tests.factories import IcdCodeFactory
from tests.generation.pipeline_fakes import answers, make_case, make_endpoint, run_pending_steps
from tests.llm_replay import error_response, llm_replay, models_response

pytestmark = pytest.mark.django_db

LAUNCH = reverse("generation:batch-launch")
CONFIRM = reverse("generation:batch-confirm")


def test_a_clinician_cannot_launch_batches(clinician_client):
    assert clinician_client.get(LAUNCH).status_code == 403


def test_the_launch_form_lists_the_endpoints(admin_member_client):
    make_endpoint(name="lab-endpoint")
    make_endpoint(name="tiny", is_local_demo=True)
    response = admin_member_client.get(LAUNCH)
    assert response.status_code == 200
    assert "lab-endpoint (test-model)" in response.text
    assert "tiny (test-model) - local demo model: for trying the product, not clinical content" in response.text
    assert "after the note" in response.text


def test_an_unknown_code_is_shown_and_nothing_is_created(admin_member_client):
    endpoint = make_endpoint()
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    response = admin_member_client.post(
        CONFIRM, {"codes": "I10, NOPE1", "pairs_per_code": 1, "endpoint": endpoint.pk, "reviews_required": 1}
    )
    assert response.status_code == 400
    assert "Unknown ICD-10-CM code(s): NOPE1" in response.text
    assert not GenerationBatch.objects.exists()


def test_the_launch_form_itself_creates_nothing_only_the_confirmation_does(admin_member_client):
    endpoint = make_endpoint()
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    plan = {"codes": "I10", "pairs_per_code": 1, "endpoint": endpoint.pk, "reviews_required": 1}
    assert admin_member_client.post(LAUNCH, plan).status_code == 405
    assert not GenerationBatch.objects.exists()
    assert 'action="{}"'.format(reverse("generation:batch-estimate")) in admin_member_client.get(LAUNCH).text


def test_launching_plans_the_batch_and_opens_its_page(admin_member_client, admin_member):
    endpoint = make_endpoint()
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    with llm_replay([models_response(["test-model"])]):
        response = admin_member_client.post(
            CONFIRM,
            {
                "codes": "I10",
                "pairs_per_code": 3,
                "endpoint": endpoint.pk,
                "reviews_required": 2,
                "gates": ["scenario", "dialogue"],
            },
        )
    batch = GenerationBatch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("generation:batch-detail", args=[batch.pk])
    assert (batch.planned_count, batch.reviews_required, batch.created_by) == (3, 2, admin_member)
    assert batch.config["gates"] == ["dialogue", "scenario"]


def test_the_batch_page_polls_while_cases_run_and_stops_when_done(admin_member_client):
    case = make_case()
    case.batch.endpoint.is_local_demo = True
    case.batch.endpoint.save()
    case_start(case=case)
    url = reverse("generation:batch-detail", args=[case.batch_id])

    page = admin_member_client.get(url)
    assert "not clinical content" in page.text
    assert 'hx-trigger="every 2s"' in page.text
    assert "0 of 1 cases settled" in page.text.replace("<strong>", "").replace("</strong>", "")

    with llm_replay(answers(5)):  # the demo model's judge makes no call
        run_pending_steps()
    update = admin_member_client.get(url, headers={"HX-Request": "true"})
    assert update.status_code == 286
    text = update.text.replace("<strong>", "").replace("</strong>", "")
    assert "1 of 1 cases settled" in text
    assert "1 produced" in text
    assert "1000 / 400" in text
    assert "near-duplicate check only" in page.text
    assert "hx-trigger" not in text
    assert "<html" not in text


def test_cancelling_from_the_page_stops_open_cases(admin_member_client):
    case = make_case()
    case_start(case=case)
    response = admin_member_client.post(reverse("generation:batch-cancel", args=[case.batch_id]))
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == CaseStatus.CANCELLED


def test_failed_cases_can_be_sent_back_to_the_queue_from_the_page(admin_member_client):
    case = make_case()
    case_start(case=case)
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()
    url = reverse("generation:batch-detail", args=[case.batch_id])
    assert "Run the failed steps again" in admin_member_client.get(url).text

    response = admin_member_client.post(reverse("generation:batch-retry-failed", args=[case.batch_id]), follow=True)
    assert "1 failed case(s) sent back to the queue." in response.text
    case.refresh_from_db()
    assert case.status == CaseStatus.SCENARIO_GENERATING


def test_retrying_a_cancelled_batch_is_refused_with_a_message(admin_member_client):
    case = make_case()
    case_start(case=case)
    admin_member_client.post(reverse("generation:batch-cancel", args=[case.batch_id]))
    response = admin_member_client.post(reverse("generation:batch-retry-failed", args=[case.batch_id]), follow=True)
    assert response.redirect_chain == [(reverse("generation:batch-detail", args=[case.batch_id]), 302)]
    assert "The batch was cancelled; plan a new one instead." in response.text
    assert "sent back to the queue" not in response.text
