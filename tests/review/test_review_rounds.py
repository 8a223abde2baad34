"""One rule for N-review rounds: a verdict counts for the content it was given on. An edit
or a regeneration makes new content, so it starts a new round: earlier approvals no longer
count and their reviewers find the case in their queue again. A reviewer who has given a
verdict cannot regenerate; the export carries only content that every counted approver
approved; agreement compares verdicts on the same version."""

import json
from pathlib import Path

import pytest
from django.urls import reverse

from generation.models import ArtefactKind, CaseStatus, PipelineStep, VersionSource
from generation.services.cases import artefact_version_create, case_transition
from review import agreement, selectors, services
from review.datasets.export import ExportFilters, ExportOptions, approved_pairs, dataset_export_write
from review.models import ReviewAction, ReviewDecision
from tests.factories import SAMPLE_NOTE, ClinicianFactory, approved_pair_create
from tests.review.review_fixtures import case_in_review, seen, seen_post

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def decide(case, reviewer, action=ReviewAction.APPROVE, **extra):
    services.review_decision_record(
        case=case, reviewer=reviewer, action=action, seen=seen(case), opened_at=None, **extra
    )
    case.refresh_from_db()


def edit_plan(case, author, text):
    base = case.versions.filter(kind="note").exclude(source=VersionSource.HUMAN_DRAFT).order_by("-number").first()
    return services.note_section_edit(case=case, author=author, section="plan", text=text, base_number=base.number)


def in_pair_queue(case, reviewer) -> bool:
    queue = selectors.case_queue_for_reviewer(reviewer=reviewer, queue="pair", filters=selectors.QueueFilters())
    return queue.filter(pk=case.pk).exists()


def exported_notes(tmp_path: Path) -> list[str]:
    out = tmp_path / "out"
    dataset_export_write(options=ExportOptions(), out=out)
    lines = (out / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["Note"] for line in lines]


def test_an_edit_after_an_approval_starts_a_new_round(clinician):
    case = case_in_review(reviews_required=2)
    editor = ClinicianFactory()
    decide(case, clinician)
    assert not in_pair_queue(case, clinician)

    edit_plan(case, editor, "Start metformin 1000 mg.")

    assert selectors.round_tally(case=case) == selectors.RoundTally(reviews=0, accepts=0, refusals=0)
    assert in_pair_queue(case, clinician)  # the earlier approver sees the new version
    assert not selectors.reviewer_has_decided(case=case, reviewer=clinician)
    decide(case, editor)
    assert case.status == CaseStatus.PAIR_REVIEW  # one of two reviews on the new version
    decide(case, clinician)
    assert case.status == CaseStatus.APPROVED


def test_an_edit_after_a_rejection_starts_a_new_round_too(clinician):
    """Per version: the rejection was about v1; v2 is new content nobody has judged."""
    case = case_in_review(reviews_required=2)
    decide(case, ClinicianFactory(), ReviewAction.REJECT, reason="other", comment="Wrong dose.")
    edit_plan(case, clinician, "Fixed dose.")
    decide(case, clinician)
    assert case.status == CaseStatus.PAIR_REVIEW
    assert selectors.round_tally(case=case) == selectors.RoundTally(reviews=1, accepts=1, refusals=0)


def test_a_reviewer_who_approved_cannot_regenerate(clinician, django_capture_on_commit_callbacks):
    case = case_in_review(reviews_required=2)
    decide(case, clinician)
    with pytest.raises(services.ReviewError, match="already decided"):
        services.regeneration_request(
            case=case, reviewer=clinician, target="note", comment="Redo.", seen=seen(case), opened_at=None
        )
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert selectors.round_tally(case=case).accepts == 1


def test_a_reviewer_who_approved_cannot_regenerate_through_the_view(clinician, clinician_client):
    case = case_in_review(reviews_required=2)
    decide(case, clinician)
    response = clinician_client.post(
        reverse("review:regenerate", args=[case.pk]),
        {"target": "note", "comment": "Redo it.", **seen_post(case)},
        **HTMX,
    )
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.status == CaseStatus.PAIR_REVIEW
    assert not PipelineStep.objects.filter(case=case).exists()


def test_a_later_reviewers_regeneration_starts_a_new_round(clinician, django_capture_on_commit_callbacks):
    case = case_in_review(reviews_required=2)
    decide(case, clinician)
    with django_capture_on_commit_callbacks(execute=False):
        services.regeneration_request(
            case=case, reviewer=ClinicianFactory(), target="note", comment="Redo.", seen=seen(case), opened_at=None
        )
    case.refresh_from_db()
    # The agents write the new note, then the new dialogue, and the pair is back in review.
    case_transition(case=case, to=CaseStatus.DIALOGUE_GENERATING)
    case_transition(case=case, to=CaseStatus.PAIR_REVIEW)
    assert in_pair_queue(case, clinician)
    assert selectors.round_tally(case=case).reviews == 0


def test_the_export_after_an_edit_after_approval_holds_only_what_every_approver_approved(clinician, tmp_path):
    case = case_in_review(reviews_required=2)
    editor = ClinicianFactory()
    decide(case, clinician)
    edit_plan(case, editor, "EDITED AFTER THE FIRST APPROVAL")
    decide(case, editor)

    assert exported_notes(tmp_path) == []  # the first approver never saw the edit

    decide(case, clinician)  # ... until they approve the edited version too
    (note,) = exported_notes(tmp_path / "again")
    assert "EDITED AFTER THE FIRST APPROVAL" in note
    approvals = ReviewDecision.objects.filter(case=case, action__in=["approve", "edit"], note_version__number=2)
    assert approvals.count() == 2


def test_the_export_refuses_an_approval_recorded_under_the_old_rule():
    """A pair approved before this rule: two approvals required, the second reviewer edited
    after the first approved and approved the edit. No version has two approvals."""
    case = approved_pair_create(reviewers=1)
    case.reviews_required = 2
    case.save(update_fields=["reviews_required"])
    edited = artefact_version_create(
        case=case,
        kind=ArtefactKind.NOTE,
        content={**SAMPLE_NOTE, "plan": "Edited."},
        source=VersionSource.HUMAN_EDIT,
        author=ClinicianFactory(),
    )
    ReviewDecision.objects.create(
        case=case,
        stage="pair",
        reviewer=edited.author,
        action="edit",
        note_version=edited,
        dialogue_version=case.versions.get(kind="dialogue"),
    )
    assert list(approved_pairs(filters=ExportFilters())) == []


def test_agreement_compares_verdicts_on_the_same_version_only(clinician):
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    case = case_in_review(reviews_required=2)
    decide(case, ann)  # approves v1
    edit_plan(case, bob, "Another plan.")
    decide(case, bob, ReviewAction.REJECT, reason="other", comment="Still wrong.")  # rejects v2

    ratings = selectors.verdict_tallies()["pair"]

    assert ratings.raters == ("ann", "bob")
    assert ratings.pairs == {}
    assert agreement.krippendorff_alpha(ratings).items == 0


def test_agreement_counts_two_verdicts_on_the_same_version_as_one_item():
    ann, bob = ClinicianFactory(username="ann"), ClinicianFactory(username="bob")
    case = case_in_review(reviews_required=2)
    decide(case, ann)
    decide(case, bob, ReviewAction.REJECT, reason="other", comment="No.")

    ratings = selectors.verdict_tallies()["pair"]

    assert ratings.pairs == {("ann", "bob"): {("accept", "refuse"): 1}}
