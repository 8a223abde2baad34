"""The review queues: one per stage, "assigned to me" and, for admins, adjudication."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render

from review import selectors
from review.forms import QueueFilterForm
from review.views._common import ADJUDICATE, REVIEW, ReviewRequest, page_or_partial, requires

PAGE_SIZE = 50


@requires(REVIEW)
def review_home(request: ReviewRequest) -> HttpResponse:
    can_adjudicate = request.user.has_perm(ADJUDICATE)
    counts = selectors.queue_counts(reviewer=request.user, can_adjudicate=can_adjudicate)
    queues = [(queue, selectors.QUEUE_LABELS[queue], count) for queue, count in counts.items()]
    return render(request, "review/home.html", {"queues": queues})


@requires(REVIEW)
def queue_list(request: ReviewRequest, queue: str) -> HttpResponse:
    if queue not in selectors.QUEUE_LABELS:
        raise Http404("No such queue.")
    can_adjudicate = request.user.has_perm(ADJUDICATE)
    if queue == selectors.ADJUDICATION_QUEUE and not can_adjudicate:
        raise PermissionDenied("Only admins adjudicate.")
    form = QueueFilterForm(request.GET or None)
    filters = form.filters()
    cases = selectors.case_queue_for_reviewer(reviewer=request.user, queue=queue, filters=filters)
    page = Paginator(cases, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "queue": queue,
        "queue_label": selectors.QUEUE_LABELS[queue],
        "form": form,
        "page": page,
        "filter_query": filters.as_query(),
        "counts": selectors.queue_counts(reviewer=request.user, can_adjudicate=can_adjudicate),
        "labels": selectors.QUEUE_LABELS,
    }
    return page_or_partial(request, "review/queue.html", "queue-table", context)
