"""The dataset export and import pages: thin views over review.datasets.export and
review.datasets.imports. Jobs run in the background; their pages poll until done."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling

from medsynth_site.uploads import upload_refusal
from review.datasets.export import dataset_export_request
from review.datasets.forms import ExportForm, ImportForm
from review.datasets.imports import dataset_import_request
from review.models import DatasetExport, DatasetImport, JobStatus

RECENT = 20


class AuthenticatedRequest(HttpRequest):
    """Every page needs a login (LoginRequiredMiddleware), so the user is a real account."""

    user: User


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def _job_partial(request: HttpRequest, template: str, context: dict[str, object], *, finished: bool) -> HttpResponse:
    """The whole page, or only the status partial for htmx polling (which stops once finished)."""
    if not getattr(request, "htmx", False):
        return render(request, template, context)
    partial = render(request, f"{template}#job-status", context)
    if not finished:
        return partial
    stop = HttpResponseStopPolling(partial.content)
    return stop


@require_http_methods(["GET", "POST"])
@permission_required("review.add_datasetexport", raise_exception=True)
def export_list(request: AuthenticatedRequest) -> HttpResponse:
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        export = dataset_export_request(user=request.user, options=form.cleaned_data["options"])
        return redirect("datasets:export_detail", export.pk)
    exports = DatasetExport.objects.select_related("created_by")[:RECENT]
    return render(request, "datasets/exports.html", {"form": form, "exports": exports})


@require_GET
@permission_required("review.view_datasetexport", raise_exception=True)
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    export = get_object_or_404(DatasetExport, pk=pk)
    percent = round(100 * export.rows_done / export.rows_total) if export.rows_total else 0
    context = {"export": export, "percent": percent, "finished": export.status in FINISHED}
    return _job_partial(request, "datasets/export_detail.html", context, finished=export.status in FINISHED)


@require_GET
@permission_required("review.view_datasetexport", raise_exception=True)
def export_download(request: HttpRequest, pk: int) -> FileResponse:
    export = get_object_or_404(DatasetExport, pk=pk, status=JobStatus.SUCCEEDED)
    path = Path(export.file_path)
    if not path.is_file():
        raise Http404("The export file is no longer on disk.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


@require_http_methods(["GET", "POST"])
@permission_required("review.add_datasetimport", raise_exception=True)
def import_list(request: AuthenticatedRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if refusal := upload_refusal(request):
        # The upload stopped at the limit, so the fields after the file never arrived: start over.
        messages.error(request, refusal)
        return redirect("datasets:imports")
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        job = dataset_import_request(
            user=request.user,
            file_name=upload.name,
            chunks=upload.chunks(),
            fmt=form.cleaned_data["fmt"],
            valid_only=form.cleaned_data["valid_only"],
            default_code=form.cleaned_data["code"].strip(),
            code_to_be_assigned=form.cleaned_data["code_to_be_assigned"],
        )
        return redirect("datasets:import_detail", job.pk)
    imports = DatasetImport.objects.select_related("created_by", "batch")[:RECENT]
    return render(request, "datasets/imports.html", {"form": form, "imports": imports})


@require_GET
@permission_required("review.view_datasetimport", raise_exception=True)
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(DatasetImport.objects.select_related("batch"), pk=pk)
    context = {"job": job, "finished": job.status in FINISHED}
    return _job_partial(request, "datasets/import_detail.html", context, finished=job.status in FINISHED)
