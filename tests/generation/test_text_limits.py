"""The text limits of generation's forms, services and tables: batch names, comments that go
into an agent's prompt, discard reasons, role descriptions, and the text of a version."""

from __future__ import annotations

import pytest
from django.db import DataError, IntegrityError, transaction

from generation.forms import BatchLaunchForm, CaseDiscardForm, CaseReassignForm, ScenarioRerunForm
from generation.models import ArtefactKind, ArtefactVersion, CaseStatus, GenerationBatch, PhysicianRole, SurveySnapshot
from generation.models.text_limits import TextTooLong
from generation.services.attention import case_discard
from generation.services.batches import BatchPlanError, BatchRequest, batch_create
from generation.services.cases import artefact_version_create
from generation.services.pipeline import case_regenerate
from tests.factories import AdminFactory, CaseFactory, IcdCodeFactory

pytestmark = pytest.mark.django_db


def too_long(limit: int, length: int) -> str:
    return f"Ensure this value has at most {limit} characters (it has {length})."


def test_the_admin_forms_refuse_texts_over_their_limits():
    rerun = ScenarioRerunForm({"comment": "x" * 5_001}, case_id=1)
    reassign = CaseReassignForm({"code": "E11.9", "comment": "x" * 5_001}, case_id=1)
    discard = CaseDiscardForm({"reason": "x" * 501}, case_id=1)
    launch = BatchLaunchForm({"codes": "E11.9," * 16_667, "pairs_per_code": 1, "reviews_required": 1})

    assert rerun.errors["comment"] == [too_long(5_000, 5_001)]
    assert reassign.errors["comment"] == [too_long(5_000, 5_001)]
    assert discard.errors["reason"] == [too_long(500, 501)]
    assert launch.errors["codes"] == [too_long(100_000, 100_002)]


def test_a_batch_name_over_the_limit_is_refused_before_anything_is_planned():
    IcdCodeFactory(code="E11.9")

    with pytest.raises(BatchPlanError) as refused:
        batch_create(request=BatchRequest(codes=["E11.9"], name="n" * 201))

    assert str(refused.value) == "The batch name is 201 characters long; the limit is 200. Shorten it and try again."
    assert not GenerationBatch.objects.exists()


def test_a_regeneration_comment_over_the_limit_never_reaches_the_prompt():
    case = CaseFactory(status=CaseStatus.FAILED)

    with pytest.raises(TextTooLong, match="The comment is 5,001 characters long; the limit is 5,000"):
        case_regenerate(case=case, stage="scenario", comment="x" * 5_001, requested_by=AdminFactory())

    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    assert not case.steps.exists()


def test_a_discard_reason_over_the_limit_is_refused():
    case = CaseFactory(status=CaseStatus.FAILED)

    with pytest.raises(TextTooLong, match="The reason is 501 characters long; the limit is 500"):
        case_discard(case=case, discarded_by=AdminFactory(), reason="x" * 501)

    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED


def test_a_version_text_over_the_artefact_limit_is_refused_before_it_is_checked_or_written():
    case = CaseFactory()

    with pytest.raises(TextTooLong) as refused:
        artefact_version_create(case=case, kind=ArtefactKind.NOTE, content={}, source="imported", text="x" * 200_001)

    assert str(refused.value) == "The note is 200,001 characters long; the limit is 200,000. Shorten it and try again."
    assert not ArtefactVersion.objects.exists()


def _refused_by_the_database(create) -> None:
    # A check constraint fails with IntegrityError; PostgreSQL's varchar(n) with DataError.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        create()


def test_the_database_refuses_over_long_texts():
    case = CaseFactory()

    def version(text: str):
        return lambda: ArtefactVersion.objects.create(
            case=case, kind=ArtefactKind.NOTE, number=1, source="imported", content={}, text=text
        )

    _refused_by_the_database(version("x" * 200_001))
    _refused_by_the_database(lambda: GenerationBatch.objects.create(name="n" * 201))
    _refused_by_the_database(lambda: SurveySnapshot.objects.create(version=99, weights={}, notes="x" * 5_001))
    _refused_by_the_database(lambda: PhysicianRole.objects.create(name="Long", description="x" * 2_001))

    # At the limits, every row is accepted.
    version("x" * 200_000)()
    GenerationBatch.objects.create(name="n" * 200)
    PhysicianRole.objects.create(name="Long", description="x" * 2_000)
