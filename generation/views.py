from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from generation import selectors
from generation.forms import BatchLaunchForm
from generation.models import GenerationBatch
from generation.services.batches import BatchPlanError, batch_cancel, batch_create, batch_retry_failed
from generation.services.pipeline import pipeline_config


def home(request: HttpRequest) -> HttpResponse:
    """What exists so far, and what to do next."""
    context = {
        "catalogue": selectors.catalogue_summary(),
        "case_counts": selectors.case_counts_by_status(),
        "batches": selectors.recent_batches(),
        "endpoint": selectors.default_endpoint(),
    }
    return render(request, "home.html", context)


@permission_required("generation.launch_batch", raise_exception=True)
@require_http_methods(["GET", "POST"])
def batch_launch(request: HttpRequest) -> HttpResponse:
    form = BatchLaunchForm(request.POST or None, initial={"endpoint": selectors.default_endpoint()})
    if request.method == "POST" and form.is_valid():
        try:
            batch = batch_create(request=form.batch_request(), created_by=request.user)  # type: ignore[arg-type]
        except BatchPlanError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Batch '{batch.name}' planned: {batch.planned_count} case(s).")
            return redirect("generation:batch-detail", batch_id=batch.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "generation/batch_launch.html", {"form": form}, status=status)


@permission_required("generation.launch_batch", raise_exception=True)
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    get_object_or_404(GenerationBatch, pk=batch_id)
    progress = selectors.batch_progress(batch_id=batch_id)
    batch = selectors.batch_for_detail(batch_id=batch_id)
    context = {"batch": batch, "progress": progress, "judge_mode": pipeline_config(batch=batch).judge_mode}
    if request.htmx:  # type: ignore[attr-defined]
        response = render(request, "generation/batch_detail.html#batch-progress", context)
        if progress.finished:
            # 286: htmx swaps this last update in and stops polling.
            return HttpResponseStopPolling(response.content)
        return response
    return render(request, "generation/batch_detail.html", context)


@permission_required("generation.launch_batch", raise_exception=True)
@require_POST
def batch_cancel_view(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = get_object_or_404(GenerationBatch, pk=batch_id)
    cancelled = batch_cancel(batch=batch)
    messages.info(request, f"Batch cancelled; {cancelled} unfinished case(s) stopped.")
    return redirect("generation:batch-detail", batch_id=batch.pk)


@permission_required("generation.launch_batch", raise_exception=True)
@require_POST
def batch_retry_failed_view(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = get_object_or_404(GenerationBatch, pk=batch_id)
    try:
        retried = batch_retry_failed(batch=batch)
    except BatchPlanError as error:
        messages.error(request, str(error))
    else:
        messages.info(request, f"{retried} failed case(s) sent back to the queue.")
    return redirect("generation:batch-detail", batch_id=batch.pk)
