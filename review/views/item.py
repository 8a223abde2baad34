"""The item screen and its decisions: approve, reject, skip, regenerate, adjudicate,
assign reviewers, and the polling that shows a regenerated version when it is ready."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from generation.errors import on_refusal
from generation.models import (
    GENERATING_STATUSES,
    NOTE_FIELD_LABELS,
    NOTE_FIELDS,
    SOAP_SECTIONS,
    ArtefactKind,
    Case,
    QualityVariable,
    ReviewStage,
)
from generation.selectors import current_versions, dialogue_polisher_report, near_duplicates_of_case
from review import access, selectors, services
from review.forms import AssignForm, CodeAssignForm, DecisionForm, RegenerateForm
from review.highlighting import highlighted_texts
from review.views._common import (
    ADJUDICATE,
    ASSIGN,
    REVIEW,
    ReviewRequest,
    case_or_404,
    case_to_act_on,
    page_or_partial,
    queue_for,
    requires,
)

TEMPLATE = "review/item.html"


def item_url(case_id: int, queue: str) -> str:
    return f"{reverse('review:item', args=[case_id])}?queue={queue}"


def _note_sections(content: dict[str, Any]) -> list[dict[str, str]]:
    """Every SOAP section, plus the optional Subjective parts the note actually has."""
    always = {key for key, _ in SOAP_SECTIONS}
    return [
        {"key": key, "label": NOTE_FIELD_LABELS[key], "text": str(content.get(key) or "")}
        for key in NOTE_FIELDS
        if key in always or content.get(key)
    ]


def _scenario_rows(content: dict[str, Any]) -> list[tuple[str, str]]:
    variables = content.get("variables") or {}
    names = dict(QualityVariable.objects.filter(key__in=list(variables)).values_list("key", "name"))
    return [(names.get(key, key.replace("_", " ").capitalize()), str(value)) for key, value in variables.items()]


def opened_at(request: ReviewRequest) -> float:
    """When the reviewer opened the item: carried by every form and edit link of the item,
    so an inline edit (which refreshes the decision forms' hidden fields) does not restart the clock."""
    raw = request.POST.get("opened_at") or request.GET.get("opened_at") or ""
    try:
        stamp = float(raw)
    except ValueError:
        return timezone.now().timestamp()
    now = timezone.now().timestamp()
    return stamp if now - services.MAX_SECONDS_SPENT <= stamp <= now else now


def _seen_initial(versions: dict[str, Any], opened: float) -> dict[str, Any]:
    initial: dict[str, Any] = {f"seen_{kind}": version.number for kind, version in versions.items()}
    initial["opened_at"] = opened
    return initial


def editable_kinds(*, stage: str | None, action_refusal: str) -> tuple[str, ...]:
    """The artefacts the user may edit now ("" refusal: they may act on the case)."""
    return () if action_refusal else selectors.EDITABLE_KINDS.get(stage or "", ())


def artefacts_context(request: ReviewRequest, case: Case, *, action_refusal: str | None = None) -> dict[str, Any]:
    """What the item's artefact panels and decision list show, and the version numbers the
    decision forms carry: all that an inline edit's answer re-renders. `action_refusal`:
    why the user may not act on the case, when the caller knows it."""
    queue = queue_for(request, case)
    stage = selectors.stage_for_case(case=case)
    versions = current_versions(case=case)
    opened = opened_at(request)
    can_adjudicate = request.user.has_perm(ADJUDICATE)
    if action_refusal is None:  # why the controls are hidden ("" when the user may act)
        action_refusal = access.case_action_refusal(case=case, user=request.user)
    sees_others = selectors.sees_others_work(case=case, viewer=request.user, can_adjudicate=can_adjudicate)
    note = versions.get(ArtefactKind.NOTE)
    dialogue = versions.get(ArtefactKind.DIALOGUE)
    return {
        "case": case,
        "stage": stage,
        "queue": queue,
        "versions": versions,
        "note": note,
        "note_sections": _note_sections(note.content) if note else [],
        "dialogue": dialogue,
        "turns": list((dialogue.content or {}).get("turns", [])) if dialogue else [],
        "highlights": highlighted_texts(versions=versions),
        "polisher_report": dialogue_polisher_report(case=case) if dialogue else None,
        "editable": editable_kinds(stage=stage, action_refusal=action_refusal),
        "visible": selectors.VISIBLE_KINDS.get(stage or "", tuple(versions)),
        "decisions": selectors.decisions_visible_to(case=case, viewer=request.user, sees_others=sees_others),
        "sees_others": sees_others,
        "action_refusal": action_refusal,
        "can_adjudicate": can_adjudicate,
        "opened_at": opened,
        "decision_form": DecisionForm(initial=_seen_initial(versions, opened)),
        "regenerate_form": RegenerateForm(
            initial={**_seen_initial(versions, opened), "target": _default_target(stage)}
        ),
    }


def item_context(request: ReviewRequest, case: Case, **overrides: Any) -> dict[str, Any]:
    context = artefacts_context(request, case)
    queue, stage, action_refusal = context["queue"], context["stage"], context["action_refusal"]
    can_adjudicate = context["can_adjudicate"]
    queue_cases = selectors.case_queue_for_reviewer(
        reviewer=request.user, queue=queue, filters=selectors.QueueFilters(), can_adjudicate=can_adjudicate
    )
    previous_id, next_id = selectors.neighbours_in_queue(queue=queue_cases, case_id=case.pk)
    scenario = context["versions"].get(ArtefactKind.SCENARIO)
    context.update(
        {
            "queue_label": selectors.QUEUE_LABELS[queue],
            "scenario": scenario,
            "scenario_rows": _scenario_rows(scenario.content) if scenario else [],
            "has_decided": selectors.reviewer_has_decided(case=case, reviewer=request.user),
            "is_generating": case.status in GENERATING_STATUSES,
            "is_disputed": can_adjudicate and selectors.case_is_disputed(case=case),
            "guidelines": selectors.guidelines(),
            "previous_url": item_url(previous_id, queue) if previous_id else "",
            "next_url": item_url(next_id, queue) if next_id else "",
            "regenerate_targets": _regenerate_targets(stage),
            "code_form": CodeAssignForm(),
            # A reviewer who may act on the case while it awaits review may (re)assign its code.
            "can_assign_code": bool(stage) and not action_refusal,
            "near_duplicates": near_duplicates_of_case(case=case),
        }
    )
    if request.user.has_perm(ASSIGN):
        context["assign_form"] = _assign_form(stage)
        context["assignments"] = selectors.case_assignments(case=case)
    context.update(overrides)
    return context


def _default_target(stage: str | None) -> str:
    if stage is None or stage == ReviewStage.PAIR:
        return ArtefactKind.NOTE
    return stage


def _regenerate_targets(stage: str | None) -> list[tuple[str, str]]:
    kinds = selectors.VISIBLE_KINDS[stage] if stage == ReviewStage.PAIR else ((stage,) if stage else ())
    return [(kind, ArtefactKind(kind).label) for kind in kinds]


def _assign_form(stage: str | None, data: Any = None) -> AssignForm:
    return AssignForm(
        data,
        reviewers=selectors.reviewers(),
        stages=list(ReviewStage.choices),
        initial={"stage": stage or ReviewStage.PAIR},
    )


@requires(REVIEW)
@require_GET
def item(request: ReviewRequest, case_id: int) -> HttpResponse:
    case = case_or_404(case_id)
    return page_or_partial(request, TEMPLATE, "review-item", item_context(request, case))


def _next_item_response(request: ReviewRequest, case: Case, queue: str) -> HttpResponse:
    """After a decision the next item of the same queue opens by itself."""
    queue_cases = selectors.case_queue_for_reviewer(
        reviewer=request.user,
        queue=queue,
        filters=selectors.QueueFilters(),
        can_adjudicate=request.user.has_perm(ADJUDICATE),
    )
    _previous, following = selectors.neighbours_in_queue(queue=queue_cases, case_id=case.pk)
    following = following or queue_cases.values_list("id", flat=True).first()
    if following:
        target = item_url(following, queue)
    else:
        messages.success(request, "This queue is empty. Well done.")
        target = reverse("review:queue", args=[queue])
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


def _decision_panel_with_errors(request: ReviewRequest, case: Case, **forms: Any) -> HttpResponse:
    """400, not 2xx: the page shows the refusal and keeps its copy of the reviewer's comment."""
    context = item_context(request, case, **forms)
    return page_or_partial(request, TEMPLATE, "decision-panel", context, status=HTTPStatus.BAD_REQUEST)


def _decision_post(
    request: ReviewRequest, case: Case, record: Callable[..., object], queue: str | None = None
) -> HttpResponse:
    """Validate the decision form, let `record` apply it, then open the next item; or show
    the decision panel again with what was refused."""
    form = DecisionForm(request.POST)
    if form.is_valid():
        with on_refusal(partial(form.add_error, None)):
            record(
                case=case,
                action=form.cleaned_data["action"],
                seen=form.seen(),
                opened_at=form.opened(),
                reason=form.cleaned_data["reason"],
                comment=form.cleaned_data["comment"],
            )
            return _next_item_response(request, case, queue or queue_for(request, case))
    return _decision_panel_with_errors(request, case, decision_form=form)


@requires(REVIEW)
@require_POST
def decide(request: ReviewRequest, case_id: int) -> HttpResponse:
    return _decision_post(
        request,
        case_to_act_on(request, case_id),
        lambda **decision: services.review_decision_record(reviewer=request.user, **decision),
    )


@requires(ADJUDICATE)
@require_POST
def adjudicate(request: ReviewRequest, case_id: int) -> HttpResponse:
    return _decision_post(
        request,
        case_or_404(case_id),
        lambda **decision: services.adjudication_record(adjudicator=request.user, **decision),
        queue=selectors.ADJUDICATION_QUEUE,
    )


@requires(REVIEW)
@require_POST
def regenerate(request: ReviewRequest, case_id: int) -> HttpResponse:
    case = case_to_act_on(request, case_id)
    form = RegenerateForm(request.POST)
    if form.is_valid():
        with on_refusal(partial(form.add_error, None)):
            services.regeneration_request(
                case=case,
                reviewer=request.user,
                target=form.cleaned_data["target"],
                comment=form.cleaned_data["comment"],
                seen=form.seen(),
                opened_at=form.opened(),
            )
            case = case_or_404(case_id)
            if not request.htmx:
                messages.info(request, "Sent back for regeneration; the new version appears here when it is ready.")
                return redirect(item_url(case.pk, queue_for(request, case)))
            return page_or_partial(request, TEMPLATE, "decision-panel", item_context(request, case))
    return _decision_panel_with_errors(request, case, regenerate_form=form)


@requires(REVIEW)
@require_GET
def regeneration_status(request: ReviewRequest, case_id: int) -> HttpResponse:
    """Polled while a case regenerates. Once it is back, the whole item is swapped in with
    the new version, and the answer is 286 so htmx stops polling."""
    case = case_or_404(case_id)
    if case.status in GENERATING_STATUSES or not request.htmx:
        return page_or_partial(request, TEMPLATE, "decision-panel", item_context(request, case))
    context = item_context(request, case, just_regenerated=True)
    item_html = render_to_string(f"{TEMPLATE}#review-item", context, request=request)
    return HttpResponseStopPolling(item_html, headers={"HX-Retarget": "#review-item", "HX-Reswap": "outerHTML"})


@requires(ASSIGN)
@require_POST
def assign(request: ReviewRequest, case_id: int) -> HttpResponse:
    case = case_or_404(case_id)
    form = _assign_form(None, request.POST)
    if form.is_valid():
        with transaction.atomic():
            services.reviewers_assign(
                case=case,
                stage=form.cleaned_data["stage"],
                reviewers=form.cleaned_data["reviewers"],
                assigned_by=request.user,
            )
        messages.success(request, "Reviewers assigned.")
        form = _assign_form(form.cleaned_data["stage"])
    return page_or_partial(request, TEMPLATE, "assign-panel", item_context(request, case, assign_form=form))


@requires(REVIEW)
@require_POST
def code_assign(request: ReviewRequest, case_id: int) -> HttpResponse:
    """Give the case its ICD-10-CM code (validated against the catalogue); the code panel is
    shown again, with the refusal and the typed code kept when the code is refused."""
    case = case_to_act_on(request, case_id)
    form = CodeAssignForm(request.POST)
    if form.is_valid():
        with on_refusal(partial(form.add_error, "code")):
            case = services.case_code_assign(case=case, reviewer=request.user, written=form.cleaned_data["code"])
            if not request.htmx:
                messages.success(request, f"Case coded {form.cleaned_data['code']}.")
                return redirect(item_url(case.pk, queue_for(request, case)))
            context = item_context(request, case_or_404(case_id), code_assigned=True)
            return page_or_partial(request, TEMPLATE, "code-panel", context)
    context = item_context(request, case, code_form=form)
    return page_or_partial(request, TEMPLATE, "code-panel", context, status=HTTPStatus.BAD_REQUEST)
