import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import ArtefactKind, CaseStatus, PipelineStep, VersionSource
from generation.services.cases import artefact_version_create, case_transition
from review import services
from review.models import Guideline, ReviewAction, ReviewDecision
from tests.factories import SAMPLE_NOTE, CaseFactory, ClinicianFactory, LlmEndpointFactory
from tests.review.review_fixtures import case_in_review, seen, seen_post

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def item_url(case, queue="pair"):
    return f"{reverse('review:item', args=[case.pk])}?queue={queue}"


def test_full_page_versus_htmx_partial(clinician_client):
    case = case_in_review()
    full = clinician_client.get(item_url(case))
    partial = clinician_client.get(item_url(case), **HTMX)
    assert b"<html" in full.content
    assert b'id="review-item"' in full.content
    assert b"<html" not in partial.content
    assert partial.content.lstrip().startswith(b'<div id="review-item"')
    for text in ("Subjective", "Plan", "metformin 500 mg", "I&#x27;m thirsty all the time", case.code.code):
        assert text in full.content.decode()


def test_demo_model_text_is_labelled_as_not_clinical_content(clinician_client):
    demo = case_in_review(batch__endpoint=LlmEndpointFactory(is_local_demo=True, default_model="gemma-3-270m"))
    provider = case_in_review(batch__endpoint=LlmEndpointFactory(is_local_demo=False))
    assert "not clinical content" in clinician_client.get(item_url(demo)).content.decode()
    assert "not clinical content" not in clinician_client.get(item_url(provider)).content.decode()


def test_approve_by_htmx_opens_the_next_item(clinician_client):
    first, second = case_in_review(), case_in_review()
    response = clinician_client.post(
        f"{reverse('review:decide', args=[first.pk])}?queue=pair",
        {"action": "approve", "opened_at": time.time() - 5, **seen_post(first)},
        **HTMX,
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == item_url(second)
    first.refresh_from_db()
    assert first.status == CaseStatus.APPROVED
    assert ReviewDecision.objects.get(case=first).seconds_spent >= 5


def test_the_last_decision_returns_to_the_emptied_queue(clinician_client):
    case = case_in_review()
    response = clinician_client.post(
        reverse("review:decide", args=[case.pk]), {"action": "skip", **seen_post(case)}, **HTMX
    )
    assert response["HX-Redirect"] == reverse("review:queue", args=["pair"])


def test_reject_without_comment_is_refused_with_a_message(clinician_client):
    case = case_in_review()
    response = clinician_client.post(
        reverse("review:decide", args=[case.pk]),
        {"action": "reject", "reason": "", "comment": "", **seen_post(case)},
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 400  # not 2xx: the page keeps its copy of the comment
    assert 'id="decision-panel"' in body
    assert "<html" not in body
    assert "A rejection needs a comment" in body
    assert "Choose why you reject" in body
    assert not ReviewDecision.objects.exists()


def test_reject_with_reason_and_comment_is_recorded(clinician_client):
    case = case_in_review()
    clinician_client.post(
        reverse("review:decide", args=[case.pk]),
        {"action": "reject", "reason": "unsafe_advice", "comment": "Dose too high.", **seen_post(case)},
        **HTMX,
    )
    decision = ReviewDecision.objects.get()
    assert (decision.action, decision.reason, decision.comment) == ("reject", "unsafe_advice", "Dose too high.")


def test_editing_a_section_swaps_that_section_and_leaves_the_decision_panel_alone(clinician_client):
    case = case_in_review()
    url = reverse("review:note-section-edit", args=[case.pk, "plan"])
    form = clinician_client.get(url, **HTMX).content.decode()
    assert form.lstrip().startswith('<div id="note-section-plan"')
    assert 'id="id_plan_text"' in form  # one id per open section
    saved = clinician_client.post(url, {"base_number": 1, "text": "Start metformin 1000 mg."}, **HTMX)
    body = saved.content.decode()
    # Only the section comes back (it replaces itself: no second note panel nested inside the first)...
    assert body.lstrip().startswith('<div id="note-section-plan"')
    assert "Start metformin 1000 mg." in body
    assert 'id="note-panel"' not in body
    # ...with, out of band, the heading's new version and the numbers the decision forms send,
    # so approving names v2; the decision panel, and a comment half-written in it, stay.
    assert '<div id="note-panel-head" hx-swap-oob="true">' in body
    assert 'data-version="2">v2' in body
    assert '<span id="decision-seen" hx-swap-oob="true">' in body
    assert 'name="seen_note" value="2"' in body
    assert 'id="decision-panel"' not in body
    assert 'name="comment"' not in body
    assert case.versions.get(kind="note", number=2).source == VersionSource.HUMAN_EDIT


def test_two_sections_open_at_once_have_their_own_field_ids(clinician_client):
    case = case_in_review()
    plan = clinician_client.get(reverse("review:note-section-edit", args=[case.pk, "plan"]), **HTMX)
    assessment = clinician_client.get(reverse("review:note-section-edit", args=[case.pk, "assessment"]), **HTMX)
    assert 'for="id_plan_text"' in plan.content.decode()
    assert 'for="id_assessment_text"' in assessment.content.decode()


def test_editing_a_turn_swaps_only_that_turn(clinician_client):
    case = case_in_review()
    url = reverse("review:turn-edit", args=[case.pk, 1, "edit"])
    form = clinician_client.get(url, **HTMX).content.decode()
    # The editor replaces turn 2 alone, so the editors of other turns stay open.
    assert form.lstrip().startswith('<li id="turn-1"')
    assert 'id="dialogue-panel"' not in form
    assert 'id="id_turn1_edit_text"' in form
    saved = clinician_client.post(url, {"base_number": 1, "speaker": "patient", "text": "Thirsty, all day."}, **HTMX)
    body = saved.content.decode()
    assert saved.status_code == 200
    assert body.lstrip().startswith('<li id="turn-1"')
    assert "Thirsty, all day." in body
    assert 'id="dialogue-panel"' not in body
    assert '<div id="dialogue-panel-head" hx-swap-oob="true">' in body
    assert 'name="seen_dialogue" value="2"' in body
    assert 'id="decision-panel"' not in body


def test_a_refused_turn_comes_back_as_400_with_its_message(clinician_client):
    case = case_in_review()
    response = clinician_client.post(
        reverse("review:turn-edit", args=[case.pk, 1, "edit"]),
        {"base_number": 1, "speaker": "patient", "text": ""},
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert body.lstrip().startswith('<li id="turn-1"')
    assert "A turn needs some text." in body


def test_a_conflicting_edit_keeps_the_text_and_says_so(clinician_client):
    case = case_in_review()
    services.note_section_edit(
        case=case, author=ClinicianFactory(username="dr_other"), section="plan", text="Their plan.", base_number=1
    )
    response = clinician_client.post(
        reverse("review:note-section-edit", args=[case.pk, "plan"]),
        {"base_number": 1, "text": "My careful plan."},
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 409
    assert "Another reviewer saved version 2" in body  # blind review: not who
    assert "My careful plan.</textarea>" in body
    assert "Their plan." in body  # the newer text is shown to merge by hand
    assert 'name="base_number" value="2"' in body  # a second save is deliberate
    draft = case.versions.get(source=VersionSource.HUMAN_DRAFT)
    assert draft.content["plan"] == "My careful plan."


def test_adding_a_dialogue_turn_through_the_view(clinician_client):
    case = case_in_review()
    url = reverse("review:turn-edit", args=[case.pk, 0, "insert"])
    form = clinician_client.get(url, **HTMX).content.decode()
    assert form.lstrip().startswith('<li id="new-turn-0"')
    assert "Add turn" in form
    response = clinician_client.post(
        url, {"base_number": 1, "speaker": "patient", "text": "It started in May."}, **HTMX
    )
    # The turns after it are renumbered, so the whole dialogue comes back in place of the form.
    assert response["HX-Retarget"] == "#dialogue-panel"
    assert response.content.decode().lstrip().startswith('<section id="dialogue-panel"')
    turns = case.versions.get(kind="dialogue", number=2).content["turns"]
    assert turns[1] == {"speaker": "patient", "text": "It started in May."}


def test_moving_a_turn_through_the_view(clinician_client):
    case = case_in_review()
    clinician_client.post(reverse("review:turn-move", args=[case.pk, 0, "down"]), {"base_number": 1}, **HTMX)
    turns = case.versions.get(kind="dialogue", number=2).content["turns"]
    assert [t["speaker"] for t in turns] == ["patient", "doctor", "doctor"]


def test_llm_markup_is_shown_as_text(clinician_client):
    hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    case = case_in_review(
        note={"subjective": hostile, "objective": "o", "assessment": "a", "plan": "p"},
        dialogue={"turns": [{"speaker": "patient", "text": hostile}]},
    )
    body = clinician_client.get(item_url(case)).content.decode()
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_reviews_are_blind_until_you_decide(clinician_client, clinician, admin_member_client):
    case = case_in_review(reviews_required=2)
    services.review_decision_record(
        case=case,
        reviewer=ClinicianFactory(),
        action=ReviewAction.REJECT,
        seen=seen(case),
        opened_at=None,
        reason="other",
        comment="SECRET-OPINION",
    )
    assert "SECRET-OPINION" not in clinician_client.get(item_url(case)).content.decode()
    assert "SECRET-OPINION" in admin_member_client.get(item_url(case)).content.decode()


def test_regenerate_polls_until_the_new_version_appears(clinician_client, django_capture_on_commit_callbacks):
    case = case_in_review(CaseStatus.NOTE_REVIEW)
    with django_capture_on_commit_callbacks(execute=False):
        response = clinician_client.post(
            f"{reverse('review:regenerate', args=[case.pk])}?queue=note",
            {"target": "note", "comment": "Mention the eye exam.", **seen_post(case)},
            **HTMX,
        )
    body = response.content.decode()
    assert 'hx-trigger="every 2s"' in body
    assert "Regenerating" in body
    assert PipelineStep.objects.get(case=case, feedback="Mention the eye exam.")
    status_url = reverse("review:regeneration-status", args=[case.pk])
    still = clinician_client.get(status_url, **HTMX)
    assert still.status_code == 200
    assert 'hx-trigger="every 2s"' in still.content.decode()
    # The agent finishes: a regenerated version, back in review.
    case.refresh_from_db()
    artefact_version_create(
        case=case, kind=ArtefactKind.NOTE, content={"plan": "Eye exam yearly."}, source=VersionSource.REGENERATED
    )
    case_transition(case=case, to=CaseStatus.NOTE_REVIEW)
    done = clinician_client.get(status_url, **HTMX)
    assert done.status_code == 286  # htmx stops polling
    assert done["HX-Retarget"] == "#review-item"
    body = done.content.decode()
    assert body.lstrip().startswith('<div id="review-item"')
    assert "The new version is ready" in body
    assert "Eye exam yearly." in body  # the regenerated note is on screen
    assert 'hx-trigger="every 2s"' not in body


def test_regenerate_without_comment_is_refused(clinician_client):
    case = case_in_review(CaseStatus.NOTE_REVIEW)
    response = clinician_client.post(
        reverse("review:regenerate", args=[case.pk]), {"target": "note", "comment": "", **seen_post(case)}, **HTMX
    )
    assert "a regeneration needs a comment" in response.content.decode()
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW


def test_a_pipeline_refusal_of_a_regeneration_is_shown_in_the_decision_panel(clinician_client):
    # A note without a scenario: the pipeline (not the review service) refuses to regenerate it.
    case = CaseFactory(status=CaseStatus.NOTE_REVIEW)
    artefact_version_create(case=case, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.LLM_POLISHED)
    response = clinician_client.post(
        reverse("review:regenerate", args=[case.pk]),
        {"target": "note", "comment": "Shorter plan.", **seen_post(case)},
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert body.lstrip().startswith('<section id="decision-panel"')
    assert f"Case {case.pk} has no scenario yet, so its note cannot be regenerated." in body
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW
    assert not ReviewDecision.objects.exists()


def test_admin_adjudicates_from_the_item_screen(admin_member_client):
    case = case_in_review(CaseStatus.ADJUDICATION)
    page = admin_member_client.get(item_url(case, "adjudication")).content.decode()
    assert "Adjudication" in page
    assert reverse("review:adjudicate", args=[case.pk]) in page
    admin_member_client.post(
        reverse("review:adjudicate", args=[case.pk]),
        {"action": "reject", "reason": "coding_mismatch", "comment": "Wrong code.", **seen_post(case)},
        **HTMX,
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.REJECTED


def test_admin_assigns_a_reviewer_who_then_sees_it_in_their_queue(admin_member_client, clinician, clinician_client):
    case = case_in_review()
    admin_member_client.post(
        reverse("review:assign", args=[case.pk]), {"stage": "pair", "reviewers": [clinician.pk]}, **HTMX
    )
    mine = clinician_client.get(reverse("review:queue", args=["mine"])).content.decode()
    assert item_url(case, "mine") in mine


def _item_queries(client, case) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(item_url(case)).status_code == 200
    return len(queries)


def test_item_page_queries_do_not_grow_with_versions_decisions_or_guidelines(
    admin_member_client, django_assert_num_queries
):
    small = case_in_review()
    large = case_in_review(reviews_required=9)
    for n in range(6):
        services.note_section_edit(
            case=large, author=ClinicianFactory(), section="plan", text=f"Plan {n}", base_number=n + 1
        )
        services.review_decision_record(
            case=large, reviewer=ClinicianFactory(), action=ReviewAction.SKIP, seen={}, opened_at=None
        )
        Guideline.objects.create(title=f"G{n}", body_markdown="text")
    _item_queries(admin_member_client, small)  # warm the permission cache
    with django_assert_num_queries(_item_queries(admin_member_client, small)):
        admin_member_client.get(f"{reverse('review:item', args=[large.pk])}?queue=pair")


def test_an_inline_edit_does_not_restart_the_decision_clock(clinician_client):
    case = case_in_review()
    opened = time.time() - 90
    saved = clinician_client.post(
        reverse("review:note-section-edit", args=[case.pk, "plan"]),
        {"base_number": 1, "text": "New plan.", "opened_at": opened},
        **HTMX,
    ).content.decode()
    assert f'name="opened_at" value="{opened}"' in saved
    clinician_client.post(
        reverse("review:decide", args=[case.pk]), {"action": "approve", "opened_at": opened, **seen_post(case)}, **HTMX
    )
    decision = ReviewDecision.objects.get(case=case)
    assert decision.action == ReviewAction.EDIT
    assert decision.seconds_spent >= 90
