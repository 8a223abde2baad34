"""What every review view shares: permission decorators, the current queue, and
rendering either the full page or, for an htmx request, one named partial."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from generation.models import Case
from review import selectors

View = TypeVar("View", bound=Callable[..., HttpResponse])

REVIEW = "review.review_case"
ADJUDICATE = "review.adjudicate_case"
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


def queue_for(request: HttpRequest, case: Case | None = None) -> str:
    """The queue the reviewer is working through: ?queue=..., else the case's own stage."""
    requested = request.POST.get("queue") or request.GET.get("queue") or ""
    if requested in selectors.QUEUE_LABELS:
        return requested
    stage = selectors.stage_for_case(case=case) if case is not None else None
    return stage or "note"


def page_or_partial(
    request: HttpRequest, template: str, partial: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    name = f"{template}#{partial}" if getattr(request, "htmx", False) else template
    return render(request, name, context, status=status)
