"""What decisions and edits share: the case locked for the write, whether the writer may
act on it, and the stage it awaits."""

from __future__ import annotations

from django.contrib.auth.models import User

from generation.models import Case
from review import access, selectors
from review.services.errors import ReviewError


def case_lock(case: Case) -> Case:
    """The case, read fresh and locked until the transaction ends. Only the case row: on
    PostgreSQL a plain FOR UPDATE would lock the joined batch row too, and serialise every
    review write in the batch behind each other."""
    return Case.objects.select_for_update(of=("self",)).select_related("batch").get(pk=case.pk)


def refuse_unless_may_act(case: Case, user: User) -> None:
    """The adjudication and assignment rules (review.access), for every write path."""
    if refusal := access.case_action_refusal(case=case, user=user):
        raise ReviewError(refusal)


def review_stage(case: Case) -> str:
    stage = selectors.stage_for_case(case=case)
    if stage is None:
        raise ReviewError(f"Case {case.pk} is {case.get_status_display().lower()}; it is not awaiting review.")
    return stage
