"""A pair imported without a code, in a real browser: approval is refused until the reviewer
assigns the code with the item screen's control (htmx), then goes through."""

from __future__ import annotations

import re

import pytest

from generation.models import CaseStatus
from tests.factories import ClinicianFactory, IcdCodeFactory
from tests.review.review_fixtures import case_in_review

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_assign_the_code_then_approve(open_session, live_server):
    IcdCodeFactory(code="M54.5", description="Low back pain", is_billable=False)
    IcdCodeFactory(code="M54.50", description="Low back pain, unspecified")
    case, following = case_in_review(code=None), case_in_review()
    page = open_session(ClinicianFactory())
    page.goto(f"{live_server.url}/review/case/{case.pk}/?queue=pair")

    page.get_by_role("button", name=re.compile("Approve")).click()
    page.locator("#decision-panel .error", has_text="no ICD-10-CM code yet").wait_for()

    page.fill("#code-panel input[name=code]", "M54.5")
    page.get_by_role("button", name="Save code").click()
    page.locator("#code-panel .error", has_text="M54.5 is not billable").wait_for()

    page.fill("#code-panel input[name=code]", "m5450")
    page.get_by_role("button", name="Save code").click()
    page.locator("#code-panel .code-pill", has_text="M54.50").wait_for()

    page.get_by_role("button", name=re.compile("Approve")).click()
    page.wait_for_url(re.compile(rf"/review/case/{following.pk}/"))
    case.refresh_from_db()
    assert (case.status, case.code.code) == (CaseStatus.APPROVED, "M54.50")
