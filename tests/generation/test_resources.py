from __future__ import annotations

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from generation.models import IcdCode, PhysicianRole
from generation.resources import CodeFrequencyResource, IcdCodeResource, PhysicianRoleResource
from tests.factories import IcdCodeFactory

pytestmark = pytest.mark.django_db


def _import(resource, csv_text: str):
    return resource.import_data(tablib.Dataset().load(csv_text, format="csv"), dry_run=False, use_transactions=True)


def test_the_catalogue_exports_parents_by_code():
    parent = IcdCodeFactory(code="E11", depth=1)
    IcdCodeFactory(code="E11.9", parent=parent)

    exported = IcdCodeResource().export(IcdCode.objects.order_by("code"))

    assert exported.headers[:3] == ["code", "code_compact", "description"]
    assert exported.dict[1]["parent"] == "E11"


def test_frequencies_export_as_the_code_count_file_that_the_import_reads():
    IcdCodeFactory(code="E11.9", frequency=420)
    IcdCodeFactory(code="I10", frequency=77)
    IcdCodeFactory(code="J45.909")

    exported = CodeFrequencyResource().export(IcdCode.objects.order_by("code"))

    assert exported.csv.splitlines() == ["code,count", "E11.9,420", "I10,77"]
    with pytest.raises(PermissionError):
        CodeFrequencyResource().import_data(tablib.Dataset())


def test_roles_import_by_name_updates_and_creates():
    PhysicianRole.objects.update_or_create(name="Cardiologist", defaults={"description": "old"})

    result = _import(
        PhysicianRoleResource(), "name,description,is_active\nCardiologist,Heart,1\nDermatologist,Skin,1\n"
    )

    assert not result.has_errors()
    assert PhysicianRole.objects.get(name="Cardiologist").description == "Heart"
    assert PhysicianRole.objects.filter(name="Dermatologist").exists()


def test_the_admin_imports_the_catalogue_and_roles_with_import_export(admin_member_client):
    response = admin_member_client.get(reverse("admin:generation_icdcode_import"))

    assert response.status_code == 200
    # Frequencies have their own import page (the frequency service), not a resource here.
    assert response.context["form"].fields["resource"].choices == [(0, "ICD-10 catalogue")]
    assert admin_member_client.get(reverse("admin:generation_physicianrole_import")).status_code == 200


def test_clinicians_cannot_reach_the_admin_import(clinician_client):
    response = clinician_client.get(reverse("admin:generation_icdcode_import"))
    assert response.status_code in (302, 403)


def test_the_admin_import_refuses_a_file_over_the_admin_import_limit(admin_member_client, settings):
    settings.ADMIN_IMPORT_MAX_BYTES = 40
    rows = b"name,description,is_active\nCardiologist,Heart,1\nTest Podiatrist,Feet,1\n"
    upload = SimpleUploadedFile("roles.csv", rows, content_type="text/csv")

    response = admin_member_client.post(
        reverse("admin:generation_physicianrole_import"), {"import_file": upload, "format": "0", "resource": "0"}
    )

    assert f"The file is {len(rows)} bytes; an admin import is read whole, so it may be at most 40 bytes" in (
        response.text
    )
    assert not PhysicianRole.objects.filter(name="Test Podiatrist").exists()
