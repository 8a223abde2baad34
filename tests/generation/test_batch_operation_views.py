"""The batch list, the batch page's operations and live figures, and the needs-attention
queue, through the views: admins only, POST only, htmx partials and plain form posts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generation import selectors
from generation.models import (
    AgentName,
    BatchStatus,
    CaseStatus,
    GenerationBatch,
    LlmModel,
    PipelineStep,
    StepStatus,
)
from generation.services.pipeline import case_start, pipeline_step_run
from tests.factories import AdminFactory, GenerationBatchFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import (
    agent_answerer,
    answers,
    judge_output,
    make_case,
    run_pending_steps,
)
from tests.llm_replay import chat_response, error_response, llm_replay

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _url(name, *args):
    return reverse(f"generation:{name}", args=args)


def _text(response):
    return re.sub(r"\s+", " ", response.content.decode().replace("<strong>", "").replace("</strong>", ""))


def _needs_attention_case():
    case = make_case(max_scenario_revisions=0)
    case_start(case=case)
    with llm_replay(answers(2, scenario_judge=judge_output(approved=False, reason="Implausible timeline."))):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.NEEDS_ATTENTION
    return case


# --- Permissions ---------------------------------------------------------------------------


def test_clinicians_cannot_see_or_operate_batches(clinician_client):
    case = _needs_attention_case()
    batch = case.batch
    for url in (_url("batch-list"), _url("attention"), _url("batch-attention", batch.pk)):
        assert clinician_client.get(url).status_code == 403
    for name, arg in [
        ("batch-pause", batch.pk),
        ("batch-resume", batch.pk),
        ("batch-cancel", batch.pk),
        ("batch-retry-failed", batch.pk),
        ("case-rerun-scenario", case.pk),
        ("case-reassign", case.pk),
        ("case-discard", case.pk),
    ]:
        response = clinician_client.post(_url(name, arg), {"comment": "x", "code": "I10", "reason": "x"})
        assert response.status_code == 403, name
    case.refresh_from_db()
    batch.refresh_from_db()
    assert (case.status, batch.status) == (CaseStatus.NEEDS_ATTENTION, BatchStatus.COMPLETED)


def test_operations_reject_get(admin_member_client):
    case = _needs_attention_case()
    for name, arg in [("batch-pause", case.batch_id), ("batch-cancel", case.batch_id), ("case-discard", case.pk)]:
        assert admin_member_client.get(_url(name, arg)).status_code == 405


def test_the_navigation_links_the_batch_list_for_admins_only(admin_member_client, clinician_client):
    assert f'href="{_url("batch-list")}"' in admin_member_client.get(reverse("home")).text
    assert f'href="{_url("batch-list")}"' not in clinician_client.get(reverse("home")).text


# --- Pause, resume, cancel, retry from the batch page ---------------------------------------


def test_pause_and_resume_under_htmx_swap_the_progress_panel(admin_member_client):
    case = make_case()
    case_start(case=case)
    page = admin_member_client.get(_url("batch-detail", case.batch_id)).text
    assert f'action="{_url("batch-pause", case.batch_id)}"' in page  # the plain form beside hx-post
    assert f'hx-post="{_url("batch-pause", case.batch_id)}"' in page

    paused = admin_member_client.post(_url("batch-pause", case.batch_id), headers=HTMX)
    assert paused.status_code == 200
    assert "<html" not in paused.text
    assert 'id="batch-progress"' in paused.text
    assert "Batch paused: no new LLM call starts" in paused.text
    assert ">Resume</button>" in paused.text
    assert ">Pause</button>" not in paused.text
    case.batch.refresh_from_db()
    assert case.batch.status == BatchStatus.PAUSED

    resumed = admin_member_client.post(_url("batch-resume", case.batch_id), headers=HTMX)
    assert "Batch resumed: 1 waiting step(s) sent to the workers again." in resumed.text
    case.batch.refresh_from_db()
    assert case.batch.status == BatchStatus.RUNNING


def test_a_plain_form_post_returns_to_the_batch_page_with_a_message(admin_member_client):
    case = make_case()
    case_start(case=case)
    response = admin_member_client.post(_url("batch-pause", case.batch_id), follow=True)
    assert response.redirect_chain == [(_url("batch-detail", case.batch_id), 302)]
    assert "Batch paused: no new LLM call starts" in response.text
    again = admin_member_client.post(_url("batch-pause", case.batch_id), follow=True)
    assert "The batch was already paused." in again.text


def test_a_double_submit_of_run_the_failed_steps_again_retries_once(admin_member_client):
    case = make_case()
    case_start(case=case)
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()
    page = admin_member_client.get(_url("batch-detail", case.batch_id)).text
    seen_up_to = re.search(r'name="seen_up_to" value="(\d+)"', page).group(1)
    form = {"seen_up_to": seen_up_to}

    first = admin_member_client.post(_url("batch-retry-failed", case.batch_id), form, follow=True)
    assert "1 failed case(s) sent back to the queue." in first.text
    # The second click arrives while the first retry runs: nothing to do, and no error.
    second = admin_member_client.post(_url("batch-retry-failed", case.batch_id), form, follow=True)
    assert second.status_code == 200
    assert "No failed case to send back" in second.text
    # The retried step fails again; the same form submitted a third time still does nothing.
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()
    third = admin_member_client.post(_url("batch-retry-failed", case.batch_id), form, headers=HTMX)
    assert "No failed case to send back" in third.text
    assert case.steps.filter(agent=AgentName.SCENARIO_PROVIDER).count() == 2


def test_a_refused_operation_is_shown_in_the_panel(admin_member_client):
    case = make_case()
    case_start(case=case)
    admin_member_client.post(_url("batch-cancel", case.batch_id))
    response = admin_member_client.post(_url("batch-pause", case.batch_id), headers=HTMX)
    assert "The batch is cancelled: only a queued or running batch can be paused." in response.text


# --- What the batch page shows ----------------------------------------------------------------


def test_the_batch_page_counts_the_llm_calls_in_flight(admin_member_client):
    case = make_case()
    case_start(case=case)
    answer = agent_answerer()
    seen_in_flight = []

    def answer_while_looking_at_the_page(request):
        page = admin_member_client.get(_url("batch-detail", case.batch_id), headers=HTMX)
        seen_in_flight.append(re.search(r"LLM calls in flight</th><td class=\"num\">(\d+)<", page.text).group(1))
        return answer(request)

    with llm_replay([answer_while_looking_at_the_page]):
        pipeline_step_run(step_id=case.steps.get().pk, task_id="message-1")

    assert seen_in_flight == ["1"]
    after = admin_member_client.get(_url("batch-detail", case.batch_id), headers=HTMX)
    assert re.search(r"LLM calls in flight</th><td class=\"num\">0<", after.text)


def test_the_batch_page_shows_throughput_and_eta():
    """Half the cases settled in ten minutes: one pair per ten minutes, ten more to go."""
    first = make_case()
    second = make_case(batch=first.batch, code=IcdCodeFactory(code="I10", description="Hypertension", chapter="9"))
    case_start(case=first)
    with llm_replay(answers(6)):
        run_pending_steps()
    GenerationBatch.objects.filter(pk=first.batch_id).update(started_at=timezone.now() - timedelta(minutes=10))
    case_start(case=second)

    progress = selectors.batch_progress(batch_id=first.batch_id)
    assert progress.pace.pairs_per_minute == pytest.approx(0.1, rel=0.01)
    assert progress.pace.eta_text.startswith("about 10m 0")


def test_the_batch_page_renders_throughput_eta_and_a_paused_batch(admin_member_client):
    case = make_case()
    make_case(batch=case.batch, code=IcdCodeFactory(code="I10", description="Hypertension", chapter="9"))
    case_start(case=case)
    with llm_replay(answers(6)):
        run_pending_steps()
    GenerationBatch.objects.filter(pk=case.batch_id).update(started_at=timezone.now() - timedelta(minutes=10))
    text = _text(admin_member_client.get(_url("batch-detail", case.batch_id)))
    assert 'Throughput</th><td class="num">0.10 pairs per minute' in text
    assert 'ETA</th><td class="num">about 10m 0' in text

    admin_member_client.post(_url("batch-pause", case.batch_id))
    text = _text(admin_member_client.get(_url("batch-detail", case.batch_id)))
    assert 'ETA</th><td class="num">paused' in text


def test_failures_are_grouped_by_reason_with_the_raw_reply_one_click_away(admin_member_client):
    truncated = make_case()
    batch = truncated.batch
    other = make_case(batch=batch, code=IcdCodeFactory(code="I10", description="Hypertension", chapter="9"))
    missing = make_case(batch=batch, code=IcdCodeFactory(code="J02.9", description="Pharyngitis", chapter="10"))
    for case in (truncated, other, missing):
        case_start(case=case)
    cut_off = chat_response('{"planning": "A retired teacher wi', finish_reason="length")
    with llm_replay([cut_off, cut_off, error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()

    page = admin_member_client.get(_url("batch-detail", batch.pk)).text
    section = page[page.index('id="batch-failures"') :]
    assert re.search(r"Truncated \(finish_reason=length\) <span class=\"badge bad\">2</span>", section)
    assert re.search(r"Unknown model or URL \(404\) <span class=\"badge bad\">1</span>", section)
    assert "<details><summary>Raw LLM reply (call" in section
    assert "{&quot;planning&quot;: &quot;A retired teacher wi" in section  # escaped, verbatim
    assert "The model `test-model` does not exist" in section


def test_the_batch_page_sends_cases_needing_attention_to_their_queue(admin_member_client):
    case = _needs_attention_case()
    page = admin_member_client.get(_url("batch-detail", case.batch_id)).text
    assert "review screens handle" not in page
    assert "sent back from the review screens" not in page
    assert f'href="{_url("batch-attention", case.batch_id)}"' in page


# --- The batch list ---------------------------------------------------------------------------


def test_the_batch_list_shows_status_creator_progress_cost_eta_and_review_links(admin_member_client):
    creator = AdminFactory(username="data-scientist")
    case = make_case()
    GenerationBatch.objects.filter(pk=case.batch_id).update(created_by=creator, name="Diabetes run")
    # $1 per million input tokens, $2 per million output: 6 calls of 200 in / 80 out cost $0.00216.
    LlmModel.objects.filter(endpoint=case.batch.endpoint).update(input_price_per_mtok=1, output_price_per_mtok=2)
    case_start(case=case)
    with llm_replay(answers(6)):
        run_pending_steps()

    text = _text(admin_member_client.get(_url("batch-list")))
    row = text[text.index(f'id="batch-{case.batch_id}"') :]
    assert f'<a href="{_url("batch-detail", case.batch_id)}">Diabetes run</a>' in row
    assert "<td>Completed</td> <td>data-scientist</td>" in row
    assert "1 of 1 settled" in row
    assert "$0.0022" in row
    assert f'href="{reverse("review:queue", args=["pair"])}?batch={case.batch_id}"' in row


def test_the_batch_list_makes_the_same_queries_for_two_batches_or_thirty(
    admin_member_client, django_assert_num_queries
):
    def add_batches(count):
        for _ in range(count):
            case = make_case(code=IcdCodeFactory())
            GenerationBatch.objects.filter(pk=case.batch_id).update(created_by=AdminFactory())

    add_batches(2)
    admin_member_client.get(_url("batch-list"))  # warm the session and permission caches
    with CaptureQueriesContext(connection) as few:
        assert admin_member_client.get(_url("batch-list")).status_code == 200
    add_batches(28)
    with django_assert_num_queries(len(few.captured_queries)):
        response = admin_member_client.get(_url("batch-list"))
    assert response.text.count('<tr id="batch-') == 25  # one page


def test_the_batch_list_pages_through_older_batches(admin_member_client):
    for n in range(27):
        GenerationBatchFactory(name=f"Batch number {n:02d}")
    second_page = admin_member_client.get(_url("batch-list"), {"page": 2})
    assert second_page.text.count('<tr id="batch-') == 2
    assert "Batch number 00" in second_page.text
    assert "Batch number 26" not in second_page.text


# --- The needs-attention queue ----------------------------------------------------------------


def test_the_queue_lists_the_cases_and_a_discard_under_htmx_replaces_the_row(admin_member_client):
    case = _needs_attention_case()
    page = admin_member_client.get(_url("batch-attention", case.batch_id)).text
    assert f'id="attention-case-{case.pk}"' in page
    assert "Implausible timeline." in page
    assert f'action="{_url("case-discard", case.pk)}"' in page

    response = admin_member_client.post(_url("case-discard", case.pk), {"reason": "Too rare"}, headers=HTMX)
    assert response.status_code == 200
    assert response.text.strip().startswith(f'<article id="attention-case-{case.pk}"')
    assert "Discarded: the case is kept, and out of every queue and export." in response.text
    assert "<form" not in response.text
    case.refresh_from_db()
    assert case.status == CaseStatus.DISCARDED
    assert f'id="attention-case-{case.pk}"' not in admin_member_client.get(_url("attention")).text


def test_an_empty_rerun_comment_is_refused_with_the_form_and_its_error(admin_member_client):
    case = _needs_attention_case()
    response = admin_member_client.post(_url("case-rerun-scenario", case.pk), {"comment": " "}, headers=HTMX)
    assert response.status_code == 400
    assert "a rerun needs a comment" in response.text
    assert f'action="{_url("case-rerun-scenario", case.pk)}"' in response.text
    case.refresh_from_db()
    assert case.status == CaseStatus.NEEDS_ATTENTION


def test_a_plain_rerun_post_returns_to_the_queue_and_a_second_one_is_refused(admin_member_client):
    case = _needs_attention_case()
    form = {"comment": "A shorter history.", "from_batch": "1"}
    first = admin_member_client.post(_url("case-rerun-scenario", case.pk), form, follow=True)
    assert first.redirect_chain == [(_url("batch-attention", case.batch_id), 302)]
    assert "Sent back to the scenario provider with your comment" in first.text
    second = admin_member_client.post(_url("case-rerun-scenario", case.pk), form, follow=True)
    assert "no longer waits for an admin" in second.text
    assert PipelineStep.objects.filter(case=case, status=StepStatus.PENDING).count() == 1


def test_a_reassignment_under_htmx_changes_the_role_and_runs_again(admin_member_client):
    case = _needs_attention_case()
    response = admin_member_client.post(
        _url("case-reassign", case.pk), {"code": "", "role": "Endocrinologist", "comment": ""}, headers=HTMX
    )
    assert response.status_code == 200, response.text
    assert "Code or role changed; the scenario provider runs again." in response.text
    case.refresh_from_db()
    assert (case.role.name, case.role_fixed, case.status) == ("Endocrinologist", True, CaseStatus.SCENARIO_GENERATING)

    empty = admin_member_client.post(_url("case-reassign", case.pk), {"code": "", "role": ""}, headers=HTMX)
    assert empty.status_code == 400


def test_a_refused_reassignment_keeps_what_was_typed(admin_member_client):
    case = _needs_attention_case()
    response = admin_member_client.post(
        _url("case-reassign", case.pk), {"code": "Q99.99X", "role": "", "comment": "Try a rarer code."}, headers=HTMX
    )
    assert response.status_code == 400
    assert "Unknown ICD-10-CM code(s): Q99.99X" in response.text
    assert 'value="Q99.99X"' in response.text
    assert "Try a rarer code.</textarea>" in response.text
    case.refresh_from_db()
    assert case.status == CaseStatus.NEEDS_ATTENTION
