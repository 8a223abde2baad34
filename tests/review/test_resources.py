from __future__ import annotations

import pytest
import tablib
from django.urls import NoReverseMatch, reverse

from generation.models import IcdCode, PhysicianRole
from review.resources import CodeFrequencyResource, IcdCodeResource, PhysicianRoleResource, ReviewDecisionResource
from tests.factories import IcdCodeFactory, approved_pair_create

pytestmark = pytest.mark.django_db


def _import(resource, csv_text: str):
    return resource.import_data(tablib.Dataset().load(csv_text, format="csv"), dry_run=False, use_transactions=True)


def test_the_catalogue_exports_parents_by_code():
    parent = IcdCodeFactory(code="E11", depth=1)
    IcdCodeFactory(code="E11.9", parent=parent)

    exported = IcdCodeResource().export(IcdCode.objects.order_by("code"))

    assert exported.headers[:3] == ["code", "code_compact", "description"]
    assert exported.dict[1]["parent"] == "E11"


def test_frequencies_import_by_code_with_or_without_the_dot():
    IcdCodeFactory(code="E11.9")
    IcdCodeFactory(code="I10")

    result = _import(CodeFrequencyResource(), "code,frequency\nE119,420\nI10,77\n")

    assert not result.has_errors()
    assert not result.has_validation_errors()
    assert dict(IcdCode.objects.values_list("code", "frequency")) == {"E11.9": 420, "I10": 77}


def test_an_unknown_code_refuses_the_frequency_file_and_changes_nothing():
    IcdCodeFactory(code="E11.9")

    result = _import(CodeFrequencyResource(), "code,frequency\nE119,420\nQ99999,5\n")

    assert result.has_validation_errors()
    assert "Q99999" in str(result.invalid_rows[0].error)
    assert IcdCode.objects.get(code="E11.9").frequency is None
    assert not IcdCode.objects.filter(code__startswith="Q").exists()


def test_roles_import_by_name_updates_and_creates():
    PhysicianRole.objects.update_or_create(name="Cardiologist", defaults={"description": "old"})

    result = _import(
        PhysicianRoleResource(), "name,description,is_active\nCardiologist,Heart,1\nDermatologist,Skin,1\n"
    )

    assert not result.has_errors()
    assert PhysicianRole.objects.get(name="Cardiologist").description == "Heart"
    assert PhysicianRole.objects.filter(name="Dermatologist").exists()


def test_review_decisions_export_with_reviewer_and_versions_but_never_import():
    case = approved_pair_create()
    decision = case.decisions.get()

    row = ReviewDecisionResource().export().dict[0]

    assert row["reviewer"] == decision.reviewer.username
    assert row["code"] == case.code.code
    assert (row["note_version"], row["dialogue_version"], row["action"]) == (1, 1, "approve")
    with pytest.raises(PermissionError):
        ReviewDecisionResource().import_data(tablib.Dataset())


def test_the_admin_offers_import_for_codes_and_export_only_for_decisions(admin_member_client):
    assert admin_member_client.get(reverse("admin:generation_icdcode_import")).status_code == 200
    assert admin_member_client.get(reverse("admin:generation_physicianrole_import")).status_code == 200
    assert admin_member_client.get(reverse("admin:review_reviewdecision_export")).status_code == 200
    with pytest.raises(NoReverseMatch):
        reverse("admin:review_reviewdecision_import")


def test_clinicians_cannot_reach_the_admin_import(clinician_client):
    response = clinician_client.get(reverse("admin:generation_icdcode_import"))
    assert response.status_code in (302, 403)
