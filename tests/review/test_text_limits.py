"""Every text a reviewer or admin submits in the review workspace has a maximum length,
refused with a message by the form, by the service and by the database."""

from __future__ import annotations

import pytest
from django.db import DataError, IntegrityError, transaction
from django.urls import reverse

from generation.models import ArtefactKind, ArtefactVersion, CaseStatus, QualityVariable
from generation.models.text_limits import TextTooLong
from generation.selectors import current_version
from review import services
from review.forms import (
    DecisionForm,
    GuidelineForm,
    NoteSectionForm,
    PublishSnapshotForm,
    QueueFilterForm,
    RegenerateForm,
    SurveyForm,
    TurnForm,
)
from review.models import Guideline, ReviewDecision, SurveyResponse, VariableSuggestion
from tests.factories import ClinicianFactory
from tests.review.review_fixtures import case_in_review, seen, seen_post

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def too_long(limit: int) -> str:
    return f"Ensure this value has at most {limit} characters (it has {limit + 1})."


@pytest.mark.parametrize(
    ("form_class", "data", "field", "limit"),
    [
        (DecisionForm, {"action": "reject", "reason": "other"}, "comment", 5_000),
        (RegenerateForm, {"target": "note"}, "comment", 5_000),
        (NoteSectionForm, {"base_number": 1}, "text", 20_000),
        (TurnForm, {"base_number": 1, "speaker": "doctor"}, "text", 5_000),
        (PublishSnapshotForm, {}, "notes", 5_000),
        (GuidelineForm, {"title": "Safety"}, "body_markdown", 100_000),
        (GuidelineForm, {"body_markdown": "Be safe."}, "title", 200),
        (QueueFilterForm, {}, "q", 200),
    ],
)
def test_each_review_form_refuses_a_text_over_its_limit(form_class, data, field, limit):
    at_limit = form_class({**data, field: "x" * limit})
    over = form_class({**data, field: "x" * (limit + 1)})

    assert field not in at_limit.errors
    assert not over.is_valid()
    assert over.errors[field] == [too_long(limit)]


def test_the_survey_form_bounds_suggestions_and_the_new_variable():
    variable = QualityVariable.objects.first()  # seeded by the migrations
    form = SurveyForm(
        {
            f"score_{variable.pk}": 5,
            f"suggestion_{variable.pk}": "x" * 2_001,
            "new_variable_name": "n" * 121,
            "new_variable_description": "d" * 2_001,
        },
        variables=[variable],
        initial_answers={},
    )

    assert not form.is_valid()
    assert form.errors[f"suggestion_{variable.pk}"] == [too_long(2_000)]
    assert form.errors["new_variable_name"] == [too_long(120)]
    assert form.errors["new_variable_description"] == [too_long(2_000)]


# --- Services ---------------------------------------------------------------------------


def test_a_decision_with_an_over_long_comment_is_refused_and_nothing_recorded(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)

    with pytest.raises(TextTooLong) as refused:
        services.review_decision_record(
            case=case,
            reviewer=clinician,
            action="reject",
            reason="other",
            comment="x" * 5_001,
            seen=seen(case),
            opened_at=None,
        )

    assert str(refused.value) == "The comment is 5,001 characters long; the limit is 5,000. Shorten it and try again."
    assert not ReviewDecision.objects.exists()


def test_a_decision_with_an_unknown_reason_is_refused(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)

    with pytest.raises(services.ReviewError, match="'made_up' is not a reason to reject"):
        services.review_decision_record(
            case=case,
            reviewer=clinician,
            action="reject",
            reason="made_up",
            comment="No.",
            seen=seen(case),
            opened_at=None,
        )


def test_a_regeneration_with_an_over_long_comment_is_refused(clinician):
    case = case_in_review(CaseStatus.NOTE_REVIEW)

    with pytest.raises(TextTooLong, match="The comment is 5,001 characters long; the limit is 5,000"):
        services.regeneration_request(
            case=case, reviewer=clinician, target="note", comment="x" * 5_001, seen=seen(case), opened_at=None
        )

    case.refresh_from_db()
    assert case.status == CaseStatus.NOTE_REVIEW
    assert not ReviewDecision.objects.exists()


def test_an_over_long_note_section_is_refused_and_no_version_is_written(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)

    with pytest.raises(TextTooLong) as refused:
        services.note_section_edit(case=case, author=clinician, section="plan", text="x" * 20_001, base_number=1)

    assert str(refused.value) == "The section is 20,001 characters long; the limit is 20,000. Shorten it and try again."
    assert current_version(case=case, kind=ArtefactKind.NOTE).number == 1


def test_an_over_long_turn_is_refused(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)

    with pytest.raises(TextTooLong, match="The turn is 5,001 characters long; the limit is 5,000"):
        services.dialogue_turn_change(
            case=case, author=clinician, operation="insert", index=0, base_number=1, speaker="doctor", text="x" * 5_001
        )


def test_a_dialogue_grown_turn_by_turn_stops_at_the_artefact_limit(clinician):
    # 39 turns of 5,000 characters: about 195,500 characters rendered, under the 200,000 limit.
    case = case_in_review(CaseStatus.PAIR_REVIEW, dialogue={"turns": [{"speaker": "doctor", "text": "x" * 5_000}] * 39})

    with pytest.raises(TextTooLong, match=r"^The dialogue is 20[0-9],[0-9]{3} characters long; the limit is 200,000"):
        services.dialogue_turn_change(
            case=case,
            author=clinician,
            operation="insert",
            index=38,
            base_number=1,
            speaker="patient",
            text="y" * 5_000,
        )
    assert ArtefactVersion.objects.filter(case=case, kind=ArtefactKind.DIALOGUE).count() == 1


def test_survey_answers_and_guidelines_over_their_limits_are_refused(clinician, admin_member):
    variable = QualityVariable.objects.first()  # seeded by the migrations
    with pytest.raises(TextTooLong, match="A suggestion is 2,001 characters long; the limit is 2,000"):
        services.survey_answers_save(
            clinician=clinician, round_number=1, answers={variable.pk: (5, "x" * 2_001)}, new_variable=None
        )
    with pytest.raises(TextTooLong, match="The variable's name is 121 characters long; the limit is 120"):
        services.survey_answers_save(clinician=clinician, round_number=1, answers={}, new_variable=("n" * 121, ""))
    guideline = Guideline.objects.create(title="Safety", body_markdown="Be safe.")
    with pytest.raises(TextTooLong, match="The guideline is 100,001 characters long; the limit is 100,000"):
        services.guideline_save(guideline=guideline, title="Safety", body_markdown="x" * 100_001, editor=admin_member)

    assert not SurveyResponse.objects.exists()
    assert not VariableSuggestion.objects.exists()
    guideline.refresh_from_db()
    assert guideline.body_markdown == "Be safe."


# --- Screens ----------------------------------------------------------------------------


def test_the_note_section_screen_shows_the_limit_and_keeps_the_version(clinician_client):
    case = case_in_review(CaseStatus.PAIR_REVIEW)

    response = clinician_client.post(
        reverse("review:note-section-edit", args=[case.pk, "plan"]), {"base_number": 1, "text": "x" * 20_001}, **HTMX
    )

    assert too_long(20_000) in response.content.decode()
    assert current_version(case=case, kind=ArtefactKind.NOTE).number == 1


def test_the_decision_panel_shows_the_comment_limit(clinician_client):
    case = case_in_review(CaseStatus.PAIR_REVIEW)

    response = clinician_client.post(
        reverse("review:decide", args=[case.pk]),
        {"action": "reject", "reason": "other", "comment": "x" * 5_001, **seen_post(case)},
        **HTMX,
    )

    assert too_long(5_000) in response.content.decode()
    assert not ReviewDecision.objects.exists()


# --- The database -----------------------------------------------------------------------


def _refused_by_the_database(create) -> None:
    # A check constraint fails with IntegrityError; PostgreSQL's varchar(n) with DataError.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        create()


def test_the_database_refuses_over_long_review_texts(clinician):
    case = case_in_review(CaseStatus.PAIR_REVIEW)
    note = current_version(case=case, kind=ArtefactKind.NOTE)

    def decision(**fields):
        return lambda: ReviewDecision.objects.create(
            case=case, stage="pair", reviewer=clinician, note_version=note, **fields
        )

    _refused_by_the_database(decision(action="approve", comment="x" * 5_001))
    _refused_by_the_database(decision(action="reject", reason="made_up", comment="No."))
    _refused_by_the_database(lambda: Guideline.objects.create(title="t", body_markdown="x" * 100_001))
    _refused_by_the_database(lambda: Guideline.objects.create(title="t" * 201, body_markdown="b"))
    variable = QualityVariable.objects.first()  # seeded by the migrations
    _refused_by_the_database(
        lambda: SurveyResponse.objects.create(clinician=clinician, variable=variable, score=5, suggestion="x" * 2_001)
    )
    _refused_by_the_database(lambda: VariableSuggestion.objects.create(clinician=clinician, name="n" * 121))

    # At the limits, every row is accepted.
    decision(action="approve", comment="x" * 5_000)()
    Guideline.objects.create(title="t" * 200, body_markdown="x" * 100_000)
    VariableSuggestion.objects.create(clinician=ClinicianFactory(), name="n" * 120, description="d" * 2_000)


def test_publishing_a_snapshot_with_over_long_notes_says_why(admin_member, admin_member_client):
    response = admin_member_client.post(reverse("review:survey-publish"), {"notes": "x" * 5_001}, follow=True)

    assert f"Not published. Notes: {too_long(5_000)}" in response.content.decode()
