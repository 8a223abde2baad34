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
# Names of the page's own counts beside its queues' (not slugs: no queue is named so).
PAGE_COUNT, TO_ASSIGN = "page count", "to assign"


class QueuePaginator(Paginator):  # type: ignore[type-arg]
    """Pages of a queue whose count (`total`) stops QUEUE_COUNT_LIMIT cases past the page asked
    for: the next pages stay reachable without counting every waiting case ("1000+")."""

    def __init__(self, cases: QuerySet[Case], *, total: selectors.BoundedCount) -> None:
        super().__init__(cases, PAGE_SIZE)
        self.total = total

    @property
    def count(self) -> int:
        return self.total.counted  # one past the limit when bounded: the next page is there


def _count_limit(asked: str | None) -> int:
    """How far the queue is counted for the page asked: QUEUE_COUNT_LIMIT past its start."""
    page = int(asked) if asked and asked.isdigit() else 1
    return (page - 1) * PAGE_SIZE + selectors.QUEUE_COUNT_LIMIT


@requires(REVIEW)
def review_home(request: ReviewRequest) -> HttpResponse:
    can_adjudicate = request.user.has_perm(ADJUDICATE)
    counts = selectors.queue_counts(reviewer=request.user, can_adjudicate=can_adjudicate)
    queues = [(queue, selectors.QUEUE_LABELS[queue], count) for queue, count in counts.items()]
    return render(request, "review/home.html", {"queues": queues})


def _with_filters(url: str, filters: selectors.QueueFilters) -> str:
    query = urlencode(filters.as_query())
    return f"{url}?{query}" if query else url


def _counts(
    queues: dict[str, QuerySet[Case]],
    queue: str,
    *,
    cases: QuerySet[Case],
    limit: int,
    unassigned: QuerySet[Case] | None,
) -> tuple[dict[str, selectors.BoundedCount], selectors.BoundedCount, selectors.BoundedCount | None]:
    """Every count on a queue's page in one statement: the tabs', the page's (`cases` as far as
    `limit`: its tab's count when that counts the same) and the unassigned cases'."""
    counted = {name: (queued, selectors.QUEUE_COUNT_LIMIT) for name, queued in queues.items()}
    if cases is not queues[queue] or limit != selectors.QUEUE_COUNT_LIMIT:
        counted[PAGE_COUNT] = (cases, limit)
    if unassigned is not None:
        counted[TO_ASSIGN] = (unassigned, selectors.QUEUE_COUNT_LIMIT)
    counts = selectors.bounded_counts(counted)
    tabs = {name: counts[name] for name in queues}
    return tabs, counts.get(PAGE_COUNT, tabs[queue]), counts.get(TO_ASSIGN)


@requires(REVIEW)
def queue_list(request: ReviewRequest, queue: str) -> HttpResponse:
    if queue not in selectors.QUEUE_LABELS:
        raise Http404("No such queue.")
    can_adjudicate = request.user.has_perm(ADJUDICATE)
    if queue == selectors.ADJUDICATION_QUEUE and not can_adjudicate:
        raise PermissionDenied("Only admins adjudicate.")
    form = QueueFilterForm(request.GET or None)
    filters = form.filters()
    queues = selectors.queues_of(reviewer=request.user, can_adjudicate=can_adjudicate)
    cases = queues[queue]
    if filters != selectors.QueueFilters():
        cases = selectors.case_queue_for_reviewer(
            reviewer=request.user, queue=queue, filters=filters, can_adjudicate=can_adjudicate
        )
    may_assign = queue in REVIEW_STATUS_BY_STAGE and request.user.has_perm(ASSIGN)
    unassigned = selectors.cases_to_assign(stage=queue, filters=filters) if may_assign else None
    tabs, total, to_assign = _counts(
        queues, queue, cases=cases, limit=_count_limit(request.GET.get("page")), unassigned=unassigned
    )
    page = QueuePaginator(cases, total=total)
    context = {
        "queue": queue,
        "queue_label": selectors.QUEUE_LABELS[queue],
        "form": form,
        "page": page.get_page(request.GET.get("page")),
        "filter_query": filters.as_query(),
        "counts": tabs,
        "labels": selectors.QUEUE_LABELS,
    }
    if may_assign:
        context["assign_form"] = QueueAssignForm(reviewers=selectors.reviewers())
        context["assign_url"] = _with_filters(reverse("review:queue-assign", args=[queue]), filters)
        context["to_assign"] = to_assign
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
