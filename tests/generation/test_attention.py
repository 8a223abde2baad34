"""The admin's actions on a case that waits for a person: run the scenario provider again
with a comment, change the code or role and run again, or discard the case."""

from __future__ import annotations

import pytest

from generation.errors import DomainError
from generation.models import (
    AgentName,
    ArtefactKind,
    BatchStatus,
    CaseStatus,
    PhysicianRole,
    StepStatus,
)
from generation.services.attention import (
    AttentionActionRefused,
    case_discard,
    case_reassign,
    case_scenario_rerun,
)
from generation.services.pipeline import case_start
from tests.factories import AdminFactory, CaseFactory, IcdCodeFactory, case_status_force
from tests.generation.pipeline_fakes import answers, judge_output, make_case, run_pending_steps
from tests.llm_replay import llm_replay

pytestmark = pytest.mark.django_db

REJECTION = judge_output(approved=False, reason="The HbA1c does not fit the story.")


def needs_attention_case(**config):
    """A case whose scenario the judge rejected past the cap (one revision allowed)."""
    case = make_case(max_scenario_revisions=1, **config)
    case_start(case=case)
    with llm_replay(answers(4, scenario_judge=REJECTION)):
        run_pending_steps()
    case.refresh_from_db()
    assert (case.status, case.scenario_revisions) == (CaseStatus.NEEDS_ATTENTION, 2)
    return case


def provider_prompts(replay):
    return [request.prompt_text for request in replay.chat_requests if "Scenario Provider" in request.prompt_text]


# --- Run the scenario provider again with a comment ---------------------------------------


def test_a_rerun_sends_the_comment_to_the_provider_with_a_fresh_revision_budget():
    case = needs_attention_case()
    admin = AdminFactory()

    step = case_scenario_rerun(case=case, comment="Make the patient a teacher with a normal eGFR.", requested_by=admin)

    case.refresh_from_db()
    assert (case.status, case.scenario_revisions) == (CaseStatus.SCENARIO_GENERATING, 0)
    assert (step.agent, step.feedback, step.requested_by) == (
        AgentName.SCENARIO_PROVIDER,
        "Make the patient a teacher with a normal eGFR.",
        admin,
    )
    # The judge rejects once more: with a fresh budget that is a revision, not the cap.
    with llm_replay(answers(8, scenario_judge=[REJECTION, judge_output()])) as replay:
        run_pending_steps()
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert "Make the patient a teacher with a normal eGFR." in provider_prompts(replay)[0]


def test_a_rerun_needs_a_comment_and_a_second_submit_is_refused():
    case = needs_attention_case()
    with pytest.raises(AttentionActionRefused, match="a rerun needs a comment"):
        case_scenario_rerun(case=case, comment="  ", requested_by=AdminFactory())

    case_scenario_rerun(case=case, comment="A younger patient.", requested_by=AdminFactory())
    with pytest.raises(AttentionActionRefused, match="is generating scenario now: it no longer waits for an admin"):
        case_scenario_rerun(case=case, comment="A younger patient.", requested_by=AdminFactory())
    assert case.steps.filter(agent=AgentName.SCENARIO_PROVIDER, status=StepStatus.PENDING).count() == 1


# --- Change the code or the role, then run again -------------------------------------------


def test_changing_the_code_moves_the_case_to_a_free_slot_of_that_code_and_writes_a_new_scenario():
    case = needs_attention_case()
    hypertension = IcdCodeFactory(code="I10", description="Essential (primary) hypertension", chapter="9")
    CaseFactory(batch=case.batch, code=hypertension, slot=1)  # slot 1 of I10 is taken in this batch

    case_reassign(case=case, code="i10", role="", comment="", requested_by=AdminFactory())

    case.refresh_from_db()
    assert (case.code, case.slot, case.status) == (hypertension, 2, CaseStatus.SCENARIO_GENERATING)
    with llm_replay(answers(6)) as replay:
        run_pending_steps()
    prompt = provider_prompts(replay)[0]
    assert "Essential (primary) hypertension" in prompt
    assert "Your previous scenario" not in prompt  # no comment: a new scenario, not a revision
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    # The old code's scenarios are kept as history.
    assert case.versions.filter(kind=ArtefactKind.SCENARIO).count() == 3


def test_changing_the_role_fixes_it_for_the_provider():
    case = needs_attention_case()
    PhysicianRole.objects.get_or_create(name="Endocrinologist")

    case_reassign(
        case=case, code="", role="Endocrinologist", comment="Seen in a diabetes clinic.", requested_by=AdminFactory()
    )

    case.refresh_from_db()
    assert (case.role.name, case.role_fixed) == ("Endocrinologist", True)
    with llm_replay(answers(6)) as replay:
        run_pending_steps()
    prompt = provider_prompts(replay)[0]
    assert "Use this physician role: Endocrinologist." in prompt
    assert "Seen in a diabetes clinic." in prompt
    case.refresh_from_db()
    assert case.role.name == "Endocrinologist"  # the provider's own choice did not replace it


def test_a_reassignment_that_changes_nothing_or_names_an_unknown_code_is_refused():
    case = needs_attention_case()
    with pytest.raises(AttentionActionRefused, match="already has that code and role"):
        case_reassign(case=case, code="E11.9", role="", comment="", requested_by=AdminFactory())
    with pytest.raises(DomainError, match=r"Unknown ICD-10-CM code\(s\): Q99.99X"):
        case_reassign(case=case, code="Q99.99X", role="", comment="", requested_by=AdminFactory())
    with pytest.raises(DomainError, match="Unknown physician role 'Astronaut'"):
        case_reassign(case=case, code="", role="Astronaut", comment="", requested_by=AdminFactory())
    case.refresh_from_db()
    assert case.status == CaseStatus.NEEDS_ATTENTION
    assert case.code.code == "E11.9"


# --- Discard -------------------------------------------------------------------------------


def test_discarding_keeps_the_case_and_its_history_and_recounts_the_batch():
    case = needs_attention_case()
    versions = case.versions.count()
    admin = AdminFactory(username="dr-admin")
    case.batch.refresh_from_db()
    assert (case.batch.failed_count, case.batch.status) == (1, BatchStatus.COMPLETED)

    case_discard(case=case, discarded_by=admin, reason="Code too rare for this dataset")

    case.refresh_from_db()
    case.batch.refresh_from_db()
    assert case.status == CaseStatus.DISCARDED
    assert case.error.startswith("Discarded by dr-admin: Code too rare for this dataset\nBefore: The judge rejected")
    assert case.versions.count() == versions
    assert case.batch.failed_count == 0


def test_failed_and_rejected_cases_can_be_discarded_but_an_approved_one_cannot():
    for status in (CaseStatus.FAILED, CaseStatus.REJECTED):
        case = make_case()
        case_status_force(case, status)
        case_discard(case=case, discarded_by=AdminFactory())
        case.refresh_from_db()
        assert case.status == CaseStatus.DISCARDED

    approved = make_case()
    case_status_force(approved, CaseStatus.APPROVED)
    with pytest.raises(AttentionActionRefused, match="is approved: only a case that failed, needs attention"):
        case_discard(case=approved, discarded_by=AdminFactory())
