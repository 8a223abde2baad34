"""Who may act on a case: the one home of the adjudication and assignment rules.

Deciding, editing and regenerating are refused to a clinician when the case is disputed
(adjudication is an admin's job) or is not open to them (it has other assignees for its
stage, or its batch requires assignment). Views answer 403 and hide the controls with
these rules; the services refuse with them, so no other path gets round them.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from generation.models import Case
from review import selectors

ADJUDICATE_PERMISSION = "review.adjudicate_case"

AWAITS_ADJUDICATION = "This case awaits adjudication; an admin decides it."
ASSIGNED_TO_OTHERS = "This case is reviewed by the reviewers an admin assigned to it; ask an admin to assign you."


def is_adjudicator(user: User | AnonymousUser) -> bool:
    """Admins adjudicate: they may act on every case and see every reviewer's work."""
    return user.has_perm(ADJUDICATE_PERMISSION)


def case_action_refusal(*, case: Case, user: User) -> str:
    """Why `user` may not decide, edit or regenerate `case` now; "" when they may."""
    if is_adjudicator(user):
        return ""
    if selectors.case_is_disputed(case=case):
        return AWAITS_ADJUDICATION
    if not selectors.case_open_to_reviewer(case=case, reviewer=user):
        return ASSIGNED_TO_OTHERS
    return ""
