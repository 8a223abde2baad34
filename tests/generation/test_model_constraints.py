from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from generation.models import ArtefactKind, ImmutableRowError, LlmEndpoint, QualityVariable, VersionSource
from generation.selectors import current_version
from generation.services.cases import artefact_version_create
from review.models import RejectReason, ReviewAction, ReviewDecision, SurveyResponse
from tests.factories import (
    SAMPLE_NOTE,
    ArtefactVersionFactory,
    CaseFactory,
    ClinicianFactory,
    LlmEndpointFactory,
    LlmModelFactory,
)


def integrity_error():
    return pytest.raises(IntegrityError)


@pytest.mark.django_db
class TestArtefactVersions:
    def test_versions_are_numbered_per_case_and_kind_and_rendered(self):
        case = CaseFactory()
        first = artefact_version_create(
            case=case, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.LLM_RAW
        )
        second = artefact_version_create(
            case=case, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.LLM_POLISHED, parent=first
        )
        assert (first.number, second.number) == (1, 2)
        assert current_version(case=case, kind=ArtefactKind.NOTE) == second
        assert second.text.startswith("SUBJECTIVE:\nChief complaint: Increased thirst.")

    def test_a_conflicting_draft_is_kept_but_never_the_current_version(self):
        case = CaseFactory()
        current = artefact_version_create(
            case=case, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.LLM_POLISHED
        )
        draft = artefact_version_create(
            case=case,
            kind=ArtefactKind.NOTE,
            content={**SAMPLE_NOTE, "plan": "reviewer's unsaved text"},
            source=VersionSource.HUMAN_DRAFT,
            author=ClinicianFactory(),
            parent=current,
        )
        assert draft.number == 2
        assert current_version(case=case, kind=ArtefactKind.NOTE) == current

    def test_a_version_cannot_be_changed_or_deleted(self):
        version = ArtefactVersionFactory()
        version.text = "overwritten"
        with pytest.raises(ImmutableRowError):
            version.save()
        with pytest.raises(ImmutableRowError):
            version.delete()

    def test_two_versions_cannot_share_a_number(self):
        version = ArtefactVersionFactory(number=1)
        with integrity_error():
            ArtefactVersionFactory(case=version.case, kind=version.kind, number=1)

    def test_a_human_edit_needs_an_author(self):
        with integrity_error():
            ArtefactVersionFactory(source=VersionSource.HUMAN_EDIT, author=None)

    def test_an_import_keeps_its_original_text(self):
        case = CaseFactory()
        with pytest.raises(ValueError, match="original text"):
            artefact_version_create(case=case, kind=ArtefactKind.NOTE, content={}, source=VersionSource.IMPORTED)
        original = "**1. Subjective:** as it came"
        version = artefact_version_create(
            case=case, kind=ArtefactKind.NOTE, content={}, source=VersionSource.IMPORTED, text=original
        )
        assert version.text == original


@pytest.mark.django_db
class TestReviewDecisionConstraints:
    def decision(self, **overrides):
        version = ArtefactVersionFactory()
        values = {"case": version.case, "stage": "note", "reviewer": ClinicianFactory(), "note_version": version}
        return ReviewDecision(**(values | overrides))

    def test_a_reject_needs_a_reason_and_a_comment(self):
        with integrity_error(), transaction.atomic():
            self.decision(action=ReviewAction.REJECT, reason=RejectReason.UNSAFE_ADVICE).save()
        with integrity_error(), transaction.atomic():
            self.decision(action=ReviewAction.REJECT, comment="Dose is ten times too high").save()
        self.decision(action=ReviewAction.REJECT, reason=RejectReason.UNSAFE_ADVICE, comment="Dose x10").save()

    def test_a_regeneration_request_needs_a_comment(self):
        with integrity_error():
            self.decision(action=ReviewAction.REGENERATE).save()

    def test_a_decision_names_the_version_it_judged(self):
        with integrity_error():
            self.decision(action=ReviewAction.APPROVE, note_version=None).save()


@pytest.mark.django_db
def test_survey_scores_are_between_1_and_10():
    clinician = ClinicianFactory()
    variable = QualityVariable.objects.get(key="demographics")
    SurveyResponse.objects.create(clinician=clinician, variable=variable, score=10)
    with integrity_error():
        SurveyResponse.objects.create(clinician=ClinicianFactory(), variable=variable, score=11)


@pytest.mark.django_db
def test_a_clinician_answers_each_variable_once_per_round():
    clinician = ClinicianFactory()
    variable = QualityVariable.objects.get(key="demographics")
    SurveyResponse.objects.create(clinician=clinician, variable=variable, score=7)
    with integrity_error():
        SurveyResponse.objects.create(clinician=clinician, variable=variable, score=8)


@pytest.mark.django_db
def test_only_one_endpoint_is_the_default():
    LlmEndpointFactory(is_default=True)
    with integrity_error():
        LlmEndpointFactory(is_default=True)


@pytest.mark.django_db
def test_a_case_slot_is_unique_per_batch_and_code():
    case = CaseFactory(slot=1)
    with integrity_error():
        CaseFactory(batch=case.batch, code=case.code, slot=1)


@pytest.mark.django_db
def test_model_prices_give_the_cost_of_a_call():
    model = LlmModelFactory(input_price_per_mtok=Decimal("2.50"), output_price_per_mtok=Decimal("10.00"))
    assert str(model.cost(input_tokens=1000, output_tokens=500)) == "0.0075"


@pytest.mark.django_db
def test_seeded_reference_data():
    assert QualityVariable.objects.count() == 13
    assert QualityVariable.objects.get(key="medical_outcome").sub_items[0].startswith("Medications")
    assert LlmEndpoint.objects.count() == 0
