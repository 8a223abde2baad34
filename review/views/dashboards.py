"""The dashboards: an index of the figures a user may see (each loads on its own), one page
per figure with its chart and table, and its CSV. Every figure reads the same filters."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse

from review.dashboards import figures, selectors
from review.dashboards.filters import DashboardFilters, FilterError, filters_from_query
from review.views._common import ReviewRequest, page_or_partial


def _visible_figures(request: ReviewRequest) -> list[figures.Figure]:
    visible = figures.figures_for(request.user)
    if not visible:
        raise PermissionDenied("The dashboards are for reviewers and admins.")
    return visible


def _figure(request: ReviewRequest, slug: str) -> figures.Figure:
    if slug not in figures.FIGURES_BY_SLUG:
        raise Http404("No such figure.")
    figure = figures.FIGURES_BY_SLUG[slug]
    if figure not in _visible_figures(request):
        raise PermissionDenied("Only admins see this figure.")
    return figure


def _filters(request: ReviewRequest) -> tuple[DashboardFilters, str]:
    """The filters of the request, or no filter and the reason the given ones were refused."""
    try:
        return filters_from_query(request.GET), ""
    except FilterError as refusal:
        return DashboardFilters(), str(refusal)


def _filter_context(request: ReviewRequest, filters: DashboardFilters, error: str) -> dict[str, object]:
    return {
        "filters": filters,
        "filter_error": error,
        "query": urlencode(filters.as_query()),
        "batches": selectors.batch_choices(),
        "models": selectors.model_choices(),
        "sees_all": figures.sees_all_figures(request.user),
    }


def dashboard_index(request: ReviewRequest) -> HttpResponse:
    visible = _visible_figures(request)
    filters, error = _filters(request)
    context = {**_filter_context(request, filters, error), "figures": visible}
    return page_or_partial(request, "review/dashboards.html", "figure-list", context, status=400 if error else 200)


def dashboard_figure(request: ReviewRequest, slug: str) -> HttpResponse:
    figure = _figure(request, slug)
    filters, error = _filters(request)
    rows = [] if error else figures.figure_rows(figure, filters=filters, viewer=request.user)
    context = {
        **_filter_context(request, filters, error),
        "figure": figure,
        "rows": rows,
        "chart": figures.chart_data(figure, rows),
    }
    status = 400 if error else 200
    return page_or_partial(request, "review/dashboard_figure.html", "figure-panel", context, status=status)


def dashboard_csv(request: ReviewRequest, slug: str) -> HttpResponse:
    figure = _figure(request, slug)
    try:
        filters = filters_from_query(request.GET)
    except FilterError as refusal:
        return HttpResponse(str(refusal), status=400, content_type="text/plain; charset=utf-8")
    rows = figures.figure_rows(figure, filters=filters, viewer=request.user)
    response = HttpResponse(figures.figure_csv(figure, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{figure.slug}.csv"'
    return response
