from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import ArtefactKind, CaseStatus, PipelineStep, VersionSource
from generation.selectors import current_version
from review import services
from review.models import ReviewAction, ReviewerAssignment
from tests.factories import ClinicianFactory, GenerationBatchFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db


def decide(case, reviewer, action=ReviewAction.APPROVE, **kwargs):
    return services.review_decision_record(
        case=case,
        reviewer=reviewer,
        action=action,
        seen=seen(case),
        opened_at=timezone.now() - timedelta(seconds=42),
        **kwargs,
    )


def test_approving_a_pair_approves_the_case_and_records_time_and_versions(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    decision = decide(case, clinician)
    case.refresh_from_db()
    assert case.status == CaseStatus.APPROVED
    assert decision.action == ReviewAction.APPROVE
    assert 41 <= decision.seconds_spent <= 60
    assert decision.note_version.number == 1
    assert decision.dialogue_version.number == 1
    case.batch.refresh_from_db()
    assert case.batch.approved_count == 1


def test_two_required_reviews_that_disagree_go_to_adjudication(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW, reviews_required=2)
    decide(case, clinician)
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW  # waits for the second reviewer
    decide(case, ClinicianFactory(), ReviewAction.REJECT, reason="factually_wrong", comment="Wrong dose.")
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION


def test_two_required_reviews_that_both_reject_reject_the_case(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW, reviews_required=2)
    decide(case, clinician, ReviewAction.REJECT, reason="phi_risk", comment="Has a name.")
    decide(case, ClinicianFactory(), ReviewAction.REJECT, reason="other", comment="No.")
    case.refresh_from_db()
    assert case.status == CaseStatus.REJECTED


def test_adjudication_settles_a_split(clinician, admin_member):
    case = case_in_review(CaseStatus.ADJUDICATION)
    services.adjudication_record(
        case=case, adjudicator=admin_member, action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.APPROVED
    assert case.decisions.get().is_adjudication


def test_a_reviewer_cannot_decide_twice_in_one_round(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW, reviews_required=2)
    decide(case, clinician)
    with pytest.raises(services.ReviewError, match="already decided"):
        decide(case, clinician)


def test_reject_without_comment_is_refused_before_the_database(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    with pytest.raises(services.ReviewError, match="reason and a comment"):
        decide(case, clinician, ReviewAction.REJECT, reason="other", comment="  ")
    assert case.decisions.count() == 0


def test_deciding_on_an_outdated_version_is_refused(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    stale = seen(case)
    services.note_section_edit(case=case, author=ClinicianFactory(), section="plan", text="New plan.", base_number=1)
    with pytest.raises(services.StaleReview, match="changed"):
        services.review_decision_record(
            case=case, reviewer=clinician, action=ReviewAction.APPROVE, seen=stale, opened_at=None
        )


def test_skip_records_no_verdict_and_leaves_the_case_waiting(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    decide(case, clinician, ReviewAction.SKIP)
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW


def test_editing_a_note_section_adds_a_human_version_and_approval_records_an_edit(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    version = services.note_section_edit(
        case=case, author=clinician, section="plan", text="Start metformin 1000 mg.", base_number=1
    )
    assert (version.number, version.source, version.author, version.parent.number) == (
        2,
        VersionSource.HUMAN_EDIT,
        clinician,
        1,
    )
    assert version.content["plan"] == "Start metformin 1000 mg."
    assert "Start metformin 1000 mg." in version.text
    assert case.versions.get(kind="note", number=1).content["plan"].startswith("Start metformin 500 mg")
    decision = decide(case, clinician)
    assert decision.action == ReviewAction.EDIT
    assert decision.note_version == version


def test_a_stale_edit_is_refused_and_kept_as_a_draft(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    other = ClinicianFactory()
    services.note_section_edit(case=case, author=other, section="plan", text="Their plan.", base_number=1)
    with pytest.raises(services.EditConflict) as conflict:
        services.note_section_edit(case=case, author=clinician, section="plan", text="My plan.", base_number=1)
    draft = conflict.value.draft
    assert (draft.source, draft.author, draft.content["plan"]) == (VersionSource.HUMAN_DRAFT, clinician, "My plan.")
    assert "Another reviewer saved version 2" in str(conflict.value)  # blind: not who
    assert str(other) not in str(conflict.value)
    assert "draft" in str(conflict.value)
    # The draft is history, not the current note.
    assert current_version(case=case, kind=ArtefactKind.NOTE).content["plan"] == "Their plan."


@pytest.mark.parametrize(
    ("operation", "index", "expected"),
    [
        ("edit", 1, ["doctor", "doctor", "doctor"]),
        ("insert", 0, ["doctor", "doctor", "patient", "doctor"]),
        ("delete", 1, ["doctor", "doctor"]),
        ("up", 1, ["patient", "doctor", "doctor"]),
        ("down", 0, ["patient", "doctor", "doctor"]),
    ],
)
def test_dialogue_turn_changes(clinician, operation, index, expected):
    case = case_in_review(CaseStatus.DIALOGUE_REVIEW)
    version = services.dialogue_turn_change(
        case=case,
        author=clinician,
        operation=operation,
        index=index,
        base_number=1,
        speaker="doctor",
        text="Changed words.",
    )
    assert [turn["speaker"] for turn in version.content["turns"]] == expected
    assert version.source == VersionSource.HUMAN_EDIT


def test_the_last_turn_cannot_be_deleted(clinician):
    case = case_in_review(CaseStatus.DIALOGUE_REVIEW, dialogue={"turns": [{"speaker": "doctor", "text": "Hi."}]})
    with pytest.raises(services.ReviewError, match="at least one turn"):
        services.dialogue_turn_change(case=case, author=clinician, operation="delete", index=0, base_number=1)


def test_the_scenario_cannot_be_edited_as_a_note(clinician):
    case = case_in_review(CaseStatus.SCENARIO_REVIEW)
    with pytest.raises(services.ReviewError):
        services.note_section_edit(case=case, author=clinician, section="plan", text="x", base_number=1)


def test_approving_a_gated_note_starts_the_dialogue(clinician, django_capture_on_commit_callbacks):
    case = case_in_review(CaseStatus.NOTE_REVIEW)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decide(case, clinician)
    case.refresh_from_db()
    assert case.status == CaseStatus.DIALOGUE_GENERATING
    assert callbacks, "the next agent is enqueued after commit"


def test_regeneration_sends_the_comment_to_the_agent(clinician, django_capture_on_commit_callbacks):
    case = case_in_review(CaseStatus.NOTE_REVIEW)
    with django_capture_on_commit_callbacks(execute=False):
        services.regeneration_request(
            case=case, reviewer=clinician, target="note", comment="Use mmol/mol.", seen=seen(case), opened_at=None
        )
    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_GENERATING
    step = PipelineStep.objects.get(case=case, feedback="Use mmol/mol.")
    assert step.requested_by == clinician
    assert case.decisions.get().action == ReviewAction.REGENERATE


def test_regeneration_needs_a_comment(clinician):
    case = case_in_review(CaseStatus.NOTE_REVIEW)
    with pytest.raises(services.ReviewError, match="comment"):
        services.regeneration_request(
            case=case, reviewer=clinician, target="note", comment=" ", seen=seen(case), opened_at=None
        )


def test_a_decision_completes_the_reviewers_assignment(clinician, admin_member):
    case = case_in_review(CaseStatus.PAIR_REVIEW, batch=GenerationBatchFactory())
    services.reviewers_assign(case=case, stage="pair", reviewers=[clinician], assigned_by=admin_member)
    decide(case, clinician)
    assert ReviewerAssignment.objects.get(case=case).completed_at is not None
