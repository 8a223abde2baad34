"""What an admin does with a case that waits for a person: the judge rejected its scenario
up to the cap ("needs attention"), or one of its steps failed.

Run the scenario provider again with a comment (a fresh revision budget for the judge),
change the case's code or role and run it again, or discard the case: it is kept with its
history, marked discarded, and leaves every queue and export.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max

from generation.errors import DomainError
from generation.models import FAILED_STATUSES, Case, CaseStatus, GenerationBatch, PipelineStep, ReviewStage
from generation.models.text_limits import DISCARD_REASON_MAX_CHARS, text_within_limit
from generation.services.batches import batch_codes_resolve, physician_role_active
from generation.services.cases import case_transition
from generation.services.pipeline import case_regenerate


class AttentionActionRefused(DomainError):
    """The case does not wait for an admin (any more), or the request is incomplete."""


def _case_waiting(case: Case) -> Case:
    """The case, locked and read fresh; refused unless it still waits for an admin (a
    second submit of the same action finds it moved on)."""
    # Only the case row: FOR UPDATE on the join would lock the code and role rows as well (and
    # PostgreSQL refuses it outright on the nullable side of the role's outer join).
    case = Case.objects.select_for_update(of=("self",)).select_related("code", "role").get(pk=case.pk)
    if case.status not in FAILED_STATUSES:
        raise AttentionActionRefused(
            f"Case {case.pk} is {case.get_status_display().lower()} now: it no longer waits for an admin."
        )
    return case


def case_scenario_rerun(*, case: Case, comment: str, requested_by: User) -> PipelineStep:
    """Run the scenario provider again with the admin's comment in its prompt; the judge
    gets a fresh revision budget."""
    if not comment.strip():
        raise AttentionActionRefused("Say what the scenario provider should change: a rerun needs a comment.")
    with transaction.atomic():
        case = _case_waiting(case)
        return case_regenerate(case=case, stage=ReviewStage.SCENARIO, comment=comment, requested_by=requested_by)


def case_reassign(*, case: Case, code: str, role: str, comment: str, requested_by: User) -> PipelineStep:
    """Give the case another ICD-10-CM code and/or physician role, then run the scenario
    provider again. Without a comment it writes a new scenario; with one it revises the
    last scenario as the comment says."""
    with transaction.atomic():
        case = _case_waiting(case)
        new_code = batch_codes_resolve(codes=[code], top=None, chapter="")[0] if code.strip() else None
        new_role = physician_role_active(name=role) if role.strip() else None
        if new_code is not None and new_code.pk == case.code_id:
            new_code = None
        if new_role is not None and new_role.pk == case.role_id and case.role_fixed:
            new_role = None
        if new_code is None and new_role is None:
            raise AttentionActionRefused(f"Case {case.pk} already has that code and role: choose another one.")
        if new_code is not None:
            # Lock the batch so two admins cannot take the same slot of the new code.
            GenerationBatch.objects.select_for_update().filter(pk=case.batch_id).first()
            last = Case.objects.filter(batch_id=case.batch_id, code=new_code).aggregate(n=Max("slot"))["n"] or 0
            Case.objects.filter(pk=case.pk).update(code=new_code, slot=last + 1)
        if new_role is not None:
            Case.objects.filter(pk=case.pk).update(role=new_role, role_fixed=True)
        case.refresh_from_db()
        return case_regenerate(case=case, stage=ReviewStage.SCENARIO, comment=comment, requested_by=requested_by)


def case_discard(*, case: Case, discarded_by: User, reason: str = "") -> Case:
    """Give up on the case: it keeps every version, step and call, is marked discarded and
    leaves every review queue and export. Rejected cases may be discarded too."""
    text_within_limit(reason.strip(), limit=DISCARD_REASON_MAX_CHARS, what="The reason")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if not case.can_transition_to(CaseStatus.DISCARDED):
            raise AttentionActionRefused(
                f"Case {case.pk} is {case.get_status_display().lower()}: only a case that failed, needs "
                "attention or was rejected can be discarded."
            )
        why = f": {reason.strip()}" if reason.strip() else "."
        note = f"Discarded by {discarded_by.get_username()}{why}"
        if case.error:
            note += f"\nBefore: {case.error}"
        case_transition(case=case, to=CaseStatus.DISCARDED, error=note)
    return case
