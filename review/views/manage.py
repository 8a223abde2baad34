"""Admin screens of the review workspace: agreement statistics and guidelines."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from generation.models import GenerationBatch, ReviewStage
from review import agreement, selectors, services
from review.forms import GuidelineForm
from review.models import Guideline
from review.views._common import CHANGE_GUIDELINE, VIEW_DECISIONS, ReviewRequest, requires


def _stage_agreement(label: str, ratings: agreement.RatingTally) -> dict[str, Any]:
    return {
        "label": label,
        "raters": len(ratings.raters),
        "decisions": ratings.ratings,
        "cohen": agreement.pairwise_cohen(ratings),
        "fleiss": agreement.fleiss_kappa(ratings),
        "alpha": agreement.krippendorff_alpha(ratings),
    }


@requires(VIEW_DECISIONS)
def agreement_report(request: ReviewRequest) -> HttpResponse:
    batches = GenerationBatch.objects.order_by("-created_at")
    raw_batch = request.GET.get("batch", "")
    batch_id = int(raw_batch) if raw_batch.isdigit() else None
    by_stage = selectors.verdict_tallies(batch_id=batch_id)
    rows = [_stage_agreement(ReviewStage(stage).label, ratings) for stage, ratings in by_stage.items()]
    rows.append(_stage_agreement("All stages", agreement.combined(by_stage.values())))
    context = {"batches": batches, "batch_id": batch_id, "rows": rows, "min_overlap": agreement.MIN_OVERLAP}
    return render(request, "review/agreement.html", context)


@requires(CHANGE_GUIDELINE)
def guideline_list(request: ReviewRequest) -> HttpResponse:
    return render(request, "review/guidelines.html", {"guidelines": selectors.guidelines()})


@requires(CHANGE_GUIDELINE)
@require_http_methods(["GET", "POST"])
def guideline_edit(request: ReviewRequest, guideline_id: int) -> HttpResponse:
    guideline = get_object_or_404(Guideline, pk=guideline_id)
    form = GuidelineForm(request.POST or None, instance=guideline)
    if request.method == "POST" and form.is_valid():
        services.guideline_save(
            guideline=guideline,
            title=form.cleaned_data["title"],
            body_markdown=form.cleaned_data["body_markdown"],
            editor=request.user,
        )
        messages.success(request, "Guideline saved; reviewers see it beside every item.")
        return redirect("review:guidelines")
    return render(request, "review/guideline_edit.html", {"form": form, "guideline": guideline})
