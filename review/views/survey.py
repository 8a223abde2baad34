"""The quality-variable survey: answer, see the aggregate, publish a snapshot, and
preview how the latest snapshot orders the variables in the prompts."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from generation import selectors as generation_selectors
from generation.errors import on_refusal
from generation.models import QualityVariable
from review import agreement, selectors, services
from review.forms import PublishSnapshotForm, SurveyForm
from review.views._common import ANSWER_SURVEY, PUBLISH_SURVEY, VIEW_SURVEY, ReviewRequest, requires


@requires(ANSWER_SURVEY)
@require_http_methods(["GET", "POST"])
def survey(request: ReviewRequest) -> HttpResponse:
    round_number = selectors.survey_round_current()
    variables = list(QualityVariable.objects.filter(is_active=True).order_by("position"))
    answers = selectors.survey_answers(clinician=request.user, round_number=round_number)
    form = SurveyForm(request.POST or None, variables=variables, initial_answers=answers)
    if request.method == "POST" and form.is_valid():
        services.survey_answers_save(
            clinician=request.user, round_number=round_number, answers=form.answers(), new_variable=form.new_variable()
        )
        messages.success(
            request,
            f"Your answers for round {round_number} are saved. You can change them until the round is published.",
        )
        return redirect("review:survey")
    return render(
        request, "review/survey.html", {"form": form, "round_number": round_number, "answered": bool(answers)}
    )


@requires(VIEW_SURVEY)
def survey_results(request: ReviewRequest) -> HttpResponse:
    round_number = selectors.survey_round_current()
    snapshot = generation_selectors.latest_survey_snapshot()
    context = {
        "round_number": round_number,
        "aggregates": selectors.survey_aggregate(round_number=round_number),
        "respondents": selectors.survey_respondent_count(round_number=round_number),
        "alpha": agreement.krippendorff_alpha(
            agreement.tally(selectors.survey_ratings(round_number=round_number)), level="ordinal"
        ),
        "suggestions": selectors.variable_suggestions(round_number=round_number),
        "snapshot": snapshot,
        "preview": generation_selectors.ranked_variables(snapshot=snapshot) if snapshot else [],
        "publish_form": PublishSnapshotForm(),
        "can_publish": request.user.has_perm(PUBLISH_SURVEY),
    }
    return render(request, "review/survey_results.html", context)


@requires(PUBLISH_SURVEY)
@require_POST
def survey_publish(request: ReviewRequest) -> HttpResponse:
    form = PublishSnapshotForm(request.POST)
    if form.is_valid():
        with on_refusal(partial(messages.error, request)):
            snapshot = services.survey_snapshot_publish(published_by=request.user, notes=form.cleaned_data["notes"])
            messages.success(request, f"Published survey snapshot v{snapshot.version}; new generations use it.")
    else:
        messages.error(
            request, "Not published. Notes: " + " ".join(str(error) for error in form.errors.get("notes", []))
        )
    return redirect("review:survey-results")
