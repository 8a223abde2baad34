"""A reviewer assigns a case its ICD-10-CM code: a pair imported with its code to be
assigned gets one before it can be approved (review.services.decisions refuses until then),
and a reviewer may correct a code while the case awaits review."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from generation.models import Case, IcdCode, code_compact
from generation.services.catalogue import codes_by_compact, retired_code_message, unbillable_code_message
from generation.services.checks import case_checks_refresh_on_commit
from review.models import CodeAssignment
from review.services._common import case_lock, refuse_unless_may_act, review_stage
from review.services.errors import ReviewError

APPROVAL_NEEDS_CODE = (
    "This pair has no ICD-10-CM code yet: assign its code (above the texts) before approving it. "
    "You can still reject it or skip it."
)


def billable_code_for(written: str) -> IcdCode:
    """The catalogue's billable code for what a reviewer typed (with or without the dot)."""
    if not written.strip():
        raise ReviewError("Type an ICD-10-CM code, e.g. E11.9.")
    code = codes_by_compact({code_compact(written)}).get(code_compact(written))
    if code is None:
        raise ReviewError(f"{retired_code_message(written)}.")
    if message := unbillable_code_message(code):
        raise ReviewError(f"{message}.")
    return code


def case_code_assign(*, case: Case, reviewer: User, written: str) -> Case:
    """Give the case the code `written`, while it awaits review, and check its texts against
    the code once that commits (the code-consistency check reads it)."""
    code = billable_code_for(written)
    with transaction.atomic():
        case = case_lock(case)
        review_stage(case)
        refuse_unless_may_act(case, reviewer)
        if case.code_id == code.pk:
            return case
        CodeAssignment.objects.create(case=case, code=code, previous_code_id=case.code_id, assigned_by=reviewer)
        Case.objects.filter(pk=case.pk).update(code=code)
        case.code = code
        case_checks_refresh_on_commit(case_id=case.pk)
    return case
