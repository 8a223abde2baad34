"""Admins pin or exclude in-context examples per ICD chapter in the Django admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import CaseStatus, ExampleRule, ExampleRuleKind
from tests.factories import CaseFactory, IcdCodeFactory

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:generation_examplerule_add")


def test_an_admin_pins_an_approved_case_for_its_own_chapter_by_default(admin_member_client, admin_member):
    case = CaseFactory(code=IcdCodeFactory(code="J45.909", chapter="10"), status=CaseStatus.APPROVED)

    response = admin_member_client.post(ADD_URL, {"case": case.pk, "kind": "pin", "chapter": "", "note": "clear"})

    assert response.status_code == 302
    rule = ExampleRule.objects.get()
    assert (rule.chapter, rule.kind, rule.created_by) == ("10", ExampleRuleKind.PIN, admin_member)


def test_a_case_that_is_not_approved_cannot_be_pinned_but_can_be_excluded(admin_member_client):
    case = CaseFactory(code=IcdCodeFactory(code="J45.909", chapter="10"), status=CaseStatus.PAIR_REVIEW)

    refused = admin_member_client.post(ADD_URL, {"case": case.pk, "kind": "pin", "chapter": "10"})
    assert refused.status_code == 200
    assert "Only an approved case can be pinned" in refused.content.decode()
    assert not ExampleRule.objects.exists()

    excluded = admin_member_client.post(ADD_URL, {"case": case.pk, "kind": "exclude", "chapter": "9"})
    assert excluded.status_code == 302
    assert ExampleRule.objects.get().chapter == "9"
