"""The review queues: one per stage, "assigned to me" and, for admins, adjudication; and
the admins' bulk assignment of a stage's filtered queue."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from generation.errors import on_refusal
from generation.models import REVIEW_STATUS_BY_STAGE, Case
from review import selectors, services
from review.forms import QueueAssignForm, QueueFilterForm
from review.views._common import ADJUDICATE, ASSIGN, REVIEW, ReviewRequest, page_or_partial, requires

PAGE_SIZE = 50


class QueuePaginator(Paginator):  # type: ignore[type-arg]
    """Pages of a queue whose count stops QUEUE_COUNT_LIMIT cases past the page asked for: the
    next pages stay reachable without counting every waiting case (`total` says "1000+")."""

    def __init__(self, cases: QuerySet[Case], *, asked: str | None) -> None:
        super().__init__(cases, PAGE_SIZE)
        page = int(asked) if asked and asked.isdigit() else 1
        self.total = selectors.bounded_count(cases, limit=(page - 1) * PAGE_SIZE + selectors.QUEUE_COUNT_LIMIT)

    @property
    def count(self) -> int:
        return self.total.counted  # one past the limit when bounded: the next page is there


@requires(REVIEW)
def review_home(request: ReviewRequest) -> HttpResponse:
    can_adjudicate = request.user.has_perm(ADJUDICATE)
    counts = selectors.queue_counts(reviewer=request.user, can_adjudicate=can_adjudicate)
    queues = [(queue, selectors.QUEUE_LABELS[queue], count) for queue, count in counts.items()]
    return render(request, "review/home.html", {"queues": queues})


def _with_filters(url: str, filters: selectors.QueueFilters) -> str:
    query = urlencode(filters.as_query())
    return f"{url}?{query}" if query else url


@requires(REVIEW)
def queue_list(request: ReviewRequest, queue: str) -> HttpResponse:
    if queue not in selectors.QUEUE_LABELS:
        raise Http404("No such queue.")
    can_adjudicate = request.user.has_perm(ADJUDICATE)
    if queue == selectors.ADJUDICATION_QUEUE and not can_adjudicate:
        raise PermissionDenied("Only admins adjudicate.")
    form = QueueFilterForm(request.GET or None)
    filters = form.filters()
    cases = selectors.case_queue_for_reviewer(
        reviewer=request.user, queue=queue, filters=filters, can_adjudicate=can_adjudicate
    )
    page = QueuePaginator(cases, asked=request.GET.get("page")).get_page(request.GET.get("page"))
    context = {
        "queue": queue,
        "queue_label": selectors.QUEUE_LABELS[queue],
        "form": form,
        "page": page,
        "filter_query": filters.as_query(),
        "counts": selectors.queue_counts(reviewer=request.user, can_adjudicate=can_adjudicate),
        "labels": selectors.QUEUE_LABELS,
    }
    if queue in REVIEW_STATUS_BY_STAGE and request.user.has_perm(ASSIGN):
        context["assign_form"] = QueueAssignForm(reviewers=selectors.reviewers())
        context["assign_url"] = _with_filters(reverse("review:queue-assign", args=[queue]), filters)
        unassigned = selectors.cases_to_assign(stage=queue, filters=filters)
        context["to_assign"] = selectors.bounded_count(unassigned, limit=selectors.QUEUE_COUNT_LIMIT)
    return page_or_partial(request, "review/queue.html", "queue-table", context)


@requires(ASSIGN)
@require_POST
def queue_assign(request: ReviewRequest, queue: str) -> HttpResponse:
    """Share out the unassigned cases of a stage's queue, as filtered on the page (the
    filters travel in the query string), among the chosen reviewers."""
    if queue not in REVIEW_STATUS_BY_STAGE:
        raise Http404("Only a stage's queue can be assigned.")
    filters = QueueFilterForm(request.GET or None).filters()
    form = QueueAssignForm(request.POST, reviewers=selectors.reviewers())
    if form.is_valid():
        with on_refusal(partial(messages.error, request)):
            created = services.queue_assign(
                cases=selectors.cases_to_assign(stage=queue, filters=filters),
                stage=queue,
                reviewers=list(form.cleaned_data["reviewers"]),
                mode=form.cleaned_data["mode"],
                assigned_by=request.user,
            )
            cases = len({assignment.case_id for assignment in created})
            messages.success(request, f"Assigned {cases} case{'s' if cases != 1 else ''}.")
    else:
        messages.error(request, " ".join(str(error) for errors in form.errors.values() for error in errors))
    return redirect(_with_filters(reverse("review:queue", args=[queue]), filters))
