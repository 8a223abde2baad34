"""The needs-attention queue in a real browser: from the batch page to the queue, then each
action on its own case — run the scenario provider again with a comment, change the role
and run again, discard — with the pipeline running for real (steps run eagerly in the live
server, model replies replayed)."""

from __future__ import annotations

import re

import pytest

from generation.models import CaseStatus
from generation.services.pipeline import case_start
from medsynth_site.celery import app as celery_app
from tests.factories import AdminFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import answers, judge_output, make_case
from tests.llm_replay import llm_replay

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REJECTION = judge_output(approved=False, reason="The timeline is implausible.")


@pytest.fixture
def eager_steps():
    """Steps run as soon as they are enqueued, in the process that enqueues them (here the
    live server), instead of going to a broker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def cases_needing_attention(count):
    """`count` cases of one batch whose scenarios the judge rejected past the cap."""
    first = make_case(max_scenario_revisions=0)
    cases = [first] + [
        make_case(batch=first.batch, code=IcdCodeFactory(code=f"J0{n}.9", description=f"Infection {n}", chapter="10"))
        for n in range(1, count)
    ]
    with llm_replay(answers(2 * count, scenario_judge=REJECTION)):
        for case in cases:
            case_start(case=case)  # runs provider and judge at once (eager)
    for case in cases:
        case.refresh_from_db()
        assert case.status == CaseStatus.NEEDS_ATTENTION
    return cases


def test_each_action_of_the_needs_attention_queue(open_session, live_server, eager_steps):
    rerun, reassign, discard = cases_needing_attention(3)
    page = open_session(AdminFactory())
    page.goto(f"{live_server.url}/generation/batches/{rerun.batch_id}/")
    page.get_by_role("link", name="needs-attention queue").click()
    page.wait_for_url(re.compile(rf"/generation/batches/{rerun.batch_id}/needs-attention/$"))
    assert page.locator("article.attention-case").count() == 3

    with llm_replay(answers(12)) as replay:
        # Run the scenario provider again, with a comment.
        row = page.locator(f"#attention-case-{rerun.pk}")
        row.locator("textarea[name=comment]").first.fill("Make the patient a night-shift nurse.")
        row.get_by_role("button", name="Run the scenario provider again").click()
        page.locator(f"#attention-case-{rerun.pk}", has_text="Sent back to the scenario provider").wait_for()

        # Change the role, then run again.
        row = page.locator(f"#attention-case-{reassign.pk}")
        row.locator("select[name=role]").select_option("Endocrinologist")
        row.get_by_role("button", name="Change and run again").click()
        page.locator(f"#attention-case-{reassign.pk}", has_text="Code or role changed").wait_for()

    # Discard.
    row = page.locator(f"#attention-case-{discard.pk}")
    row.locator("input[name=reason]").fill("Code not needed in this dataset")
    row.get_by_role("button", name="Discard the case").click()
    page.locator(f"#attention-case-{discard.pk}", has_text="Discarded: the case is kept").wait_for()
    assert page.locator(f"#attention-case-{discard.pk} form").count() == 0

    for case in (rerun, reassign, discard):
        case.refresh_from_db()
    assert rerun.status == CaseStatus.PAIR_REVIEW
    assert "Make the patient a night-shift nurse." in replay.chat_requests[0].prompt_text
    assert (reassign.status, reassign.role.name, reassign.role_fixed) == (
        CaseStatus.PAIR_REVIEW,
        "Endocrinologist",
        True,
    )
    assert discard.status == CaseStatus.DISCARDED
    assert discard.error.startswith("Discarded by")

    page.reload()
    page.get_by_text("No case needs attention in this batch.").wait_for()
