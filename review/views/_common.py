"""What every review view shares: permission decorators, the case a URL names, the
current queue, and rendering either the full page or, for an htmx request, one named partial."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from generation.models import Case
from review import access, selectors

View = TypeVar("View", bound=Callable[..., HttpResponse])

REVIEW = "review.review_case"
ADJUDICATE = access.ADJUDICATE_PERMISSION
ASSIGN = "review.assign_reviewers"
VIEW_DECISIONS = "review.view_reviewdecision"
CHANGE_GUIDELINE = "review.change_guideline"
ANSWER_SURVEY = "review.add_surveyresponse"
VIEW_SURVEY = "review.view_surveyresponse"
PUBLISH_SURVEY = "generation.add_surveysnapshot"


class ReviewRequest(HttpRequest):
    """A request that passed the login middleware and django-htmx's middleware."""

    user: User
    htmx: HtmxDetails


def requires(permission: str) -> Callable[[View], View]:
    """403 for a logged-in user without the permission (login itself is enforced by middleware)."""
    return permission_required(permission, raise_exception=True)


def case_or_404(case_id: int) -> Case:
    try:
        return selectors.case_for_review(case_id=case_id)
    except Case.DoesNotExist as missing:
        raise Http404("No such case.") from missing


def case_to_act_on(request: ReviewRequest, case_id: int) -> Case:
    """The case a decision, edit or regeneration names; 403 when the user may not act on
    it (a disputed case, or one assigned to others: review.access)."""
    case = case_or_404(case_id)
    if refusal := access.case_action_refusal(case=case, user=request.user):
        raise PermissionDenied(refusal)
    return case


def queue_for(request: HttpRequest, case: Case | None = None) -> str:
    """The queue the reviewer is working through: ?queue=..., else the case's own stage.
    Only adjudicators work through the adjudication queue: for anyone else its neighbours
    would tell which cases are disputed."""
    requested = request.POST.get("queue") or request.GET.get("queue") or ""
    may_use = requested != selectors.ADJUDICATION_QUEUE or access.is_adjudicator(request.user)
    if requested in selectors.QUEUE_LABELS and may_use:
        return requested
    stage = selectors.stage_for_case(case=case) if case is not None else None
    return stage or "note"


def page_or_partial(
    request: HttpRequest, template: str, partial: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    name = f"{template}#{partial}" if getattr(request, "htmx", False) else template
    return render(request, name, context, status=status)
