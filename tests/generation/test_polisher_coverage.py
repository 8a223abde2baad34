"""The dialogue polisher is told what the coverage check finds unsaid in the generator's
dialogue, once; the review screen shows what the polisher reported adding."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import AgentName, CaseStatus
from generation.services.pipeline import case_start
from tests.generation.pipeline_fakes import agent_of, answers, make_case, run_pending_steps
from tests.llm_replay import llm_replay

pytestmark = pytest.mark.django_db


def test_the_polisher_gets_the_coverage_misses_of_the_generated_dialogue_and_one_chance():
    case = make_case()
    case_start(case=case)
    with llm_replay(answers(6)) as replay:
        run_pending_steps()

    (prompt,) = [r.prompt_text for r in replay.chat_requests if agent_of(r) == "dialogue_polisher"]
    # The fake note prescribes "Metformin 500 mg twice daily"; the fake dialogue never says it.
    assert "An automatic check found these facts of the note not said" in prompt
    assert "- 500 mg (dose)" in prompt
    step = case.steps.get(agent=AgentName.DIALOGUE_POLISHER)
    assert "500 mg (dose)" in step.result["coverage_misses"]
    assert step.calls.get().prompt_version == "dialogue_polisher@2"


def test_the_review_screen_shows_what_the_polisher_reported_missing(admin_member_client):
    case = make_case()
    case_start(case=case)
    polished = {
        "missing_facts": ["Metformin 500 mg twice daily"],
        "turns": [
            {"speaker": "doctor", "text": "We will start metformin 500 mg twice daily."},
            {"speaker": "patient", "text": "All right."},
            {"speaker": "doctor", "text": "Take it with your meals."},
            {"speaker": "patient", "text": "With breakfast and dinner?"},
            {"speaker": "doctor", "text": "Yes, and we recheck in three months."},
            {"speaker": "patient", "text": "Thank you, doctor."},
        ],
    }
    with llm_replay(answers(6, dialogue_polisher=polished)):
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    page = admin_member_client.get(f"{reverse('review:item', args=[case.pk])}?queue=pair").content.decode()
    assert "reported adding what the draft missed" in page
    assert '<span class="badge">Metformin 500 mg twice daily</span>' in page
