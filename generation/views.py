from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial, wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from generation import code_search, provider_batch_selectors, selectors
from generation.errors import on_refusal
from generation.forms import (
    BatchBudgetForm,
    BatchLaunchForm,
    CaseActionForm,
    CodeSelectionForm,
    RetryFailedForm,
    case_action_forms,
)
from generation.models import FAILED_STATUSES, BatchStatus, Case, GenerationBatch
from generation.services.attention import case_discard, case_reassign, case_scenario_rerun
from generation.services.batches import (
    BatchRequest,
    batch_budget_set,
    batch_cancel,
    batch_codes_plan,
    batch_create,
    batch_pause,
    batch_request_estimate,
    batch_resume,
    batch_retry_failed,
)
from generation.services.pipeline import pipeline_config

LAUNCH_BATCH = "generation.launch_batch"
BATCHES_PER_PAGE = 25
# The batch page's progress panel with its buttons: what its polling and its buttons swap.
PROGRESS_PARTIAL = "generation/batch_detail.html#batch-progress"


def home(request: HttpRequest) -> HttpResponse:
    """What exists so far, and what to do next."""
    context = {
        "catalogue": selectors.catalogue_summary(),
        "case_counts": selectors.case_counts_by_status(),
        "batches": selectors.recent_batches(),
        "endpoint": selectors.default_endpoint(),
    }
    return render(request, "home.html", context)


@permission_required(LAUNCH_BATCH, raise_exception=True)
@require_GET
def batch_launch(request: HttpRequest) -> HttpResponse:
    """The empty plan. It posts to the estimate; only the confirmation creates a batch."""
    form = BatchLaunchForm(initial={"endpoint": selectors.default_endpoint()})
    return render(request, LAUNCH_TEMPLATE, {"form": form})


# --- Launch confirmation: the plan's cost estimate, then confirm and start -------------------

LAUNCH_TEMPLATE = "generation/batch_launch.html"
CONFIRM_TEMPLATE = "generation/batch_confirm.html"


def _launch_form_again(request: HttpRequest, form: BatchLaunchForm, *, status: int) -> HttpResponse:
    return render(request, LAUNCH_TEMPLATE, {"form": form}, status=status)


def _confirmation(
    request: HttpRequest, form: BatchLaunchForm, budget_form: BatchBudgetForm, *, status: int = 200
) -> HttpResponse:
    """The estimate of the planned batch beside the plan (carried in hidden fields) and its cap."""
    with on_refusal(partial(form.add_error, None)):
        estimate = batch_request_estimate(request=form.batch_request())
        context = {"form": form, "estimate": estimate, "budget_form": budget_form}
        return render(request, CONFIRM_TEMPLATE, context, status=status)
    return _launch_form_again(request, form, status=400)


@permission_required(LAUNCH_BATCH, raise_exception=True)
@require_POST
def batch_estimate_view(request: HttpRequest) -> HttpResponse:
    """Plan -> the estimate: what the batch would cost, before anything is created. "Change
    the plan" comes back here and shows the form as it was filled in."""
    form = BatchLaunchForm(request.POST)
    if "change" in request.POST:
        return _launch_form_again(request, form, status=200)
    if not form.is_valid():
        return _launch_form_again(request, form, status=400)
    return _confirmation(request, form, BatchBudgetForm())


@permission_required(LAUNCH_BATCH, raise_exception=True)
@require_POST
def batch_confirm_view(request: HttpRequest) -> HttpResponse:
    """Confirm and start: create the batch that was estimated, with its cap."""
    form = BatchLaunchForm(request.POST)
    budget_form = BatchBudgetForm(request.POST)
    if not form.is_valid():
        return _launch_form_again(request, form, status=400)
    if not budget_form.is_valid():
        return _confirmation(request, form, budget_form, status=400)
    with on_refusal(partial(form.add_error, None)):
        batch_request = replace(form.batch_request(), budget=budget_form.cleaned_data["budget"])
        batch = batch_create(request=batch_request, created_by=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Batch '{batch.name}' planned: {batch.planned_count} case(s).")
        return redirect("generation:batch-detail", batch_id=batch.pk)
    return _launch_form_again(request, form, status=400)


# The batch form's code picker: what its search box and its preview of the chosen codes swap.
CODE_OPTIONS_PARTIAL = "generation/_code_selection.html#code-options"
CODE_PREVIEW_PARTIAL = "generation/_code_selection.html#code-preview"
PREVIEW_ROWS = 200


@permission_required(LAUNCH_BATCH, raise_exception=True)
@require_GET
def code_search_view(request: HttpRequest) -> HttpResponse:
    """The autocomplete of the batch form: codes by code prefix or by words of their description."""
    query = request.GET.get("q", "")[:100]
    return render(request, CODE_OPTIONS_PARTIAL, {"codes": code_search.codes_matching(query=query), "query": query})


@permission_required(LAUNCH_BATCH, raise_exception=True)
@require_GET
def code_preview_view(request: HttpRequest) -> HttpResponse:
    """The chosen codes as the batch would plan them: frequency, approved and underway pairs,
    new pairs. Takes the batch form's fields; says what is wrong with them instead."""
    form = CodeSelectionForm(request.GET)
    context: dict[str, Any] = {"rows": [], "refusals": []}
    if not form.has_selection():
        return render(request, CODE_PREVIEW_PARTIAL, context)  # nothing chosen yet: the hint
    if not form.is_valid():
        context["refusals"] = _error_lines(form)
    else:
        with on_refusal(context["refusals"].append):
            rows = batch_codes_plan(request=BatchRequest(**form.code_request()))
            context.update(
                rows=rows[:PREVIEW_ROWS],
                hidden_rows=max(0, len(rows) - PREVIEW_ROWS),
                code_count=len(rows),
                new_pairs=sum(row.new_pairs for row in rows),
            )
    return render(request, CODE_PREVIEW_PARTIAL, context)


def _error_lines(form: CodeSelectionForm) -> list[str]:
    """A form's errors as sentences, each field's led by its label."""
    return [
        f"{form.fields[name].label or name}: {error}" if name in form.fields else str(error)
        for name, errors in form.errors.items()
        for error in errors
    ]


def _batch_page_context(batch_id: int) -> dict[str, Any]:
    batch = selectors.batch_for_detail(batch_id=batch_id)
    progress = selectors.batch_progress(batch_id=batch_id)
    retry_form = RetryFailedForm(initial={"seen_up_to": selectors.newest_failed_step_id(batch_id=batch_id)})
    return {
        "batch": batch,
        "progress": progress,
        "judge_mode": pipeline_config(batch=batch).judge_mode,
        "retry_form": retry_form,
        "budget_form": BatchBudgetForm(initial={"budget": batch.budget}),
    }


@permission_required(LAUNCH_BATCH, raise_exception=True)
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    get_object_or_404(GenerationBatch, pk=batch_id)
    context = _batch_page_context(batch_id)
    if request.htmx:  # type: ignore[attr-defined]
        response = render(request, PROGRESS_PARTIAL, context)
        if context["progress"].finished:
            # 286: htmx swaps this last update in and stops polling.
            return HttpResponseStopPolling(response.content)
        return response
    context["failures"] = selectors.batch_failures(batch_id=batch_id)
    context["provider_batches"] = provider_batch_selectors.provider_batches_of(batch_id=batch_id)
    context["batch_saving"] = provider_batch_selectors.batch_api_saving(batch_id=batch_id)
    context["cache_shares"] = provider_batch_selectors.cache_share_by_agent(batch_id=batch_id)
    return render(request, "generation/batch_detail.html", context)


@permission_required(LAUNCH_BATCH, raise_exception=True)
def batch_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.batches_for_list(), BATCHES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [selectors.batch_summary(batch) for batch in page]
    return render(request, "generation/batch_list.html", {"page": page, "rows": rows})


# --- Batch operations: POST, and answered with the progress panel under htmx ---------------

BatchOperation = Callable[[HttpRequest, GenerationBatch], str]


def _batch_operation(operate: BatchOperation) -> Callable[[HttpRequest, int], HttpResponse]:
    """A thin view around one service call: refusals become messages; an htmx request gets
    the batch's progress panel (with its buttons) back, a plain form post the batch page."""

    @permission_required(LAUNCH_BATCH, raise_exception=True)
    @require_POST
    @wraps(operate)
    def view(request: HttpRequest, batch_id: int) -> HttpResponse:
        batch = get_object_or_404(GenerationBatch, pk=batch_id)
        refusals: list[str] = []
        notice = ""
        with on_refusal(refusals.append):
            notice = operate(request, batch)
        if request.htmx:  # type: ignore[attr-defined]
            context = {**_batch_page_context(batch.pk), "notice": notice, "refusals": refusals}
            return render(request, PROGRESS_PARTIAL, context)
        for refusal in refusals:
            messages.error(request, refusal)
        if notice:
            messages.info(request, notice)
        return redirect("generation:batch-detail", batch_id=batch.pk)

    return view


@_batch_operation
def batch_pause_view(request: HttpRequest, batch: GenerationBatch) -> str:
    if batch_pause(batch=batch):
        return "Batch paused: no new LLM call starts; the calls in flight finish and are kept."
    return "The batch was already paused."


@_batch_operation
def batch_resume_view(request: HttpRequest, batch: GenerationBatch) -> str:
    was_paused = batch.status == BatchStatus.PAUSED
    enqueued = batch_resume(batch=batch)
    if not was_paused:
        return "The batch was not paused."
    return f"Batch resumed: {enqueued} waiting step(s) sent to the workers again."


@_batch_operation
def batch_cancel_view(request: HttpRequest, batch: GenerationBatch) -> str:
    cancelled = batch_cancel(batch=batch)
    return f"Batch cancelled; {cancelled} unfinished case(s) stopped. Everything produced is kept."


@_batch_operation
def batch_retry_failed_view(request: HttpRequest, batch: GenerationBatch) -> str:
    form = RetryFailedForm(request.POST)
    seen_up_to = form.cleaned_data["seen_up_to"] if form.is_valid() else None
    retried = batch_retry_failed(batch=batch, seen_up_to=seen_up_to)
    if not retried:
        return "No failed case to send back: the failed steps shown were already sent back."
    return f"{retried} failed case(s) sent back to the queue."


BUDGET_PARTIAL = "generation/batch_detail.html#batch-budget"


@permission_required(LAUNCH_BATCH, raise_exception=True)
@require_POST
def batch_budget_view(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Set (raise) a batch's cap; a batch paused at its cap resumes when the new one leaves room.
    Under htmx the budget panel comes back (with the form's errors, keeping what was typed)."""
    batch = get_object_or_404(GenerationBatch, pk=batch_id)
    form = BatchBudgetForm(request.POST)
    refusals: list[str] = []
    notice = ""
    if form.is_valid():
        with on_refusal(refusals.append):
            notice = batch_budget_set(batch=batch, budget=form.cleaned_data["budget"]).summary
    status = 400 if refusals or form.errors else 200
    if request.htmx:  # type: ignore[attr-defined]
        context = {**_batch_page_context(batch.pk), "notice": notice, "refusals": refusals}
        if status == 400:
            context["budget_form"] = form
        return render(request, BUDGET_PARTIAL, context, status=status)
    for message in [*refusals, *(error for errors in form.errors.values() for error in errors)]:
        messages.error(request, str(message))
    if notice:
        messages.info(request, notice)
    return redirect("generation:batch-detail", batch_id=batch.pk)


# --- The needs-attention queue -------------------------------------------------------------

ATTENTION_PER_PAGE = 25


@dataclass
class AttentionRow:
    """One case of the queue with its action forms (one of them bound, with its errors,
    after a refused or invalid request)."""

    case: Case
    forms: dict[str, CaseActionForm]
    notice: str = ""
    refusals: list[str] = field(default_factory=list)

    @property
    def waits_for_admin(self) -> bool:
        return self.case.status in FAILED_STATUSES


@permission_required(LAUNCH_BATCH, raise_exception=True)
def attention_queue(request: HttpRequest, batch_id: int | None = None) -> HttpResponse:
    batch = get_object_or_404(GenerationBatch, pk=batch_id) if batch_id is not None else None
    page = Paginator(selectors.cases_needing_attention(batch_id=batch_id), ATTENTION_PER_PAGE).get_page(
        request.GET.get("page")
    )
    roles = selectors.active_role_names()
    rows = [AttentionRow(case=case, forms=case_action_forms(case_id=case.pk, roles=roles)) for case in page]
    return render(request, "generation/attention.html", {"page": page, "rows": rows, "batch": batch})


CaseAction = Callable[[HttpRequest, Case, dict[str, Any]], str]


def _case_action(name: str) -> Callable[[CaseAction], Callable[[HttpRequest, int], HttpResponse]]:
    """A thin view around one action on a case of the queue, given the valid form's data: an
    htmx request gets the case's row back (the result, or the form with its errors and
    what was typed); a plain post returns to the queue with messages."""

    def decorate(act: CaseAction) -> Callable[[HttpRequest, int], HttpResponse]:
        @permission_required(LAUNCH_BATCH, raise_exception=True)
        @require_POST
        @wraps(act)
        def view(request: HttpRequest, case_id: int) -> HttpResponse:
            case = get_object_or_404(Case, pk=case_id)
            roles = selectors.active_role_names()
            forms = case_action_forms(case_id=case.pk, roles=roles, bound=name, data=request.POST)
            form = forms[name]
            refusals: list[str] = []
            notice = ""
            if form.is_valid():
                with on_refusal(refusals.append):
                    notice = act(request, case, form.cleaned_data)
            status = 400 if refusals or form.errors else 200
            if request.htmx:  # type: ignore[attr-defined]
                row = AttentionRow(
                    case=selectors.case_for_attention(case_id=case.pk), forms=forms, notice=notice, refusals=refusals
                )
                return render(request, "generation/attention.html#attention-case", {"row": row}, status=status)
            for message in [*refusals, *(error for errors in form.errors.values() for error in errors)]:
                messages.error(request, str(message))
            if notice:
                messages.info(request, notice)
            if request.POST.get("from_batch"):
                return redirect("generation:batch-attention", batch_id=case.batch_id)
            return redirect("generation:attention")

        return view

    return decorate


@_case_action("rerun")
def case_rerun_scenario_view(request: HttpRequest, case: Case, data: dict[str, Any]) -> str:
    case_scenario_rerun(case=case, comment=data["comment"], requested_by=request.user)  # type: ignore[arg-type]
    return "Sent back to the scenario provider with your comment; the judge has a fresh revision budget."


@_case_action("reassign")
def case_reassign_view(request: HttpRequest, case: Case, data: dict[str, Any]) -> str:
    case_reassign(
        case=case,
        code=data["code"],
        role=data["role"],
        comment=data["comment"],
        requested_by=request.user,  # type: ignore[arg-type]
    )
    return "Code or role changed; the scenario provider runs again."


@_case_action("discard")
def case_discard_view(request: HttpRequest, case: Case, data: dict[str, Any]) -> str:
    case_discard(case=case, discarded_by=request.user, reason=data["reason"])  # type: ignore[arg-type]
    return "Discarded: the case is kept, and out of every queue and export."
