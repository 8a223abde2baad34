from __future__ import annotations

import pytest
import tablib
from django.urls import NoReverseMatch, reverse

from review.resources import ReviewDecisionResource
from tests.factories import approved_pair_create

pytestmark = pytest.mark.django_db


def test_review_decisions_export_with_reviewer_and_versions_but_never_import():
    case = approved_pair_create()
    decision = case.decisions.get()

    row = ReviewDecisionResource().export().dict[0]

    assert row["reviewer"] == decision.reviewer.username
    assert row["code"] == case.code.code
    assert (row["note_version"], row["dialogue_version"], row["action"]) == (1, 1, "approve")
    with pytest.raises(PermissionError):
        ReviewDecisionResource().import_data(tablib.Dataset())


def test_the_admin_offers_export_only_for_decisions(admin_member_client):
    assert admin_member_client.get(reverse("admin:review_reviewdecision_export")).status_code == 200
    with pytest.raises(NoReverseMatch):
        reverse("admin:review_reviewdecision_import")
