"""Inline edits: one SOAP section or one dialogue turn at a time. Each save is a new
version; a stale save is refused, its text kept in the form and stored as a draft."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from generation.models import ArtefactKind, ArtefactVersion, Case
from review import services
from review.forms import NoteSectionForm, TurnForm, TurnOperationForm, note_section_is_known
from review.views._common import REVIEW, ReviewRequest, page_or_partial, queue_for, requires
from review.views.item import SECTION_LABELS, TEMPLATE, _case, item_context, item_url


def _after_save(request: ReviewRequest, case: Case, panel: str) -> HttpResponse:
    """The changed panel, plus the decision panel out of band (it carries the version numbers)."""
    if not request.htmx:
        return redirect(item_url(case.pk, queue_for(request, case)))
    return page_or_partial(request, TEMPLATE, f"{panel}-saved", item_context(request, case))


def _rebased_on_conflict(form: Any, conflict: services.EditConflict) -> Any:
    """The reviewer's text, now based on the newer version, so a second save is deliberate."""
    data = form.data.copy()
    data["base_number"] = str(conflict.current.number)
    rebased = type(form)(data)
    rebased.is_valid()
    rebased.add_error(None, str(conflict))
    return rebased


def _apply_edit(
    form: Any,
    context: dict[str, Any],
    *,
    save: Callable[[], object],
    newer: Callable[[ArtefactVersion], dict[str, Any]],
) -> Any:
    """Run `save`. None when it worked; otherwise the form to show again: with the refusal,
    or, on a conflict, rebased on the newer version whose text goes into the context."""
    try:
        save()
    except services.EditConflict as conflict:
        context.update(newer(conflict.current))
        return _rebased_on_conflict(form, conflict)
    except services.ReviewError as error:
        form.add_error(None, str(error))
        return form
    return None


def _edit_context(request: ReviewRequest, case: Case, kind: str) -> dict[str, Any]:
    """The item context, or 404 when the case's `kind` artefact cannot be edited now."""
    context = item_context(request, case)
    if context[kind] is None or kind not in context["editable"]:
        raise Http404(f"This {kind} cannot be edited now.")
    return context


def _section(case: Case, key: str, context: dict[str, Any]) -> dict[str, str]:
    note = context["note"]
    text = str((note.content if note else {}).get(key) or "")
    return {"key": key, "label": SECTION_LABELS[key], "text": text}


@requires(REVIEW)
@require_http_methods(["GET", "POST"])
def note_section_edit(request: ReviewRequest, case_id: int, section: str) -> HttpResponse:
    if not note_section_is_known(section):
        raise Http404("No such note section.")
    case = _case(case_id)
    context = _edit_context(request, case, ArtefactKind.NOTE)
    if request.method == "POST":
        form = NoteSectionForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            refused = _apply_edit(
                form,
                context,
                save=lambda: services.note_section_edit(
                    case=case, author=request.user, section=section, text=data["text"], base_number=data["base_number"]
                ),
                newer=lambda current: {"conflict_text": str(current.content.get(section) or "")},
            )
            if refused is None:
                return _after_save(request, case, "note-panel")
            form = refused
    else:
        form = NoteSectionForm(
            initial={"base_number": context["note"].number, "text": _section(case, section, context)["text"]}
        )
    context.update(editing_section=section, section_form=form, section=_section(case, section, context))
    return page_or_partial(request, TEMPLATE, "note-section", context)


@requires(REVIEW)
@require_http_methods(["GET", "POST"])
def dialogue_turn_edit(request: ReviewRequest, case_id: int, index: int, operation: str) -> HttpResponse:
    """Edit turn `index` in place, or (operation "insert") add a new turn after it."""
    if operation not in (services.TurnOperation.EDIT, services.TurnOperation.INSERT_AFTER):
        raise Http404("No such turn operation.")
    case = _case(case_id)
    context = _edit_context(request, case, ArtefactKind.DIALOGUE)
    turns = context["turns"]
    if operation == services.TurnOperation.EDIT and not 0 <= index < len(turns):
        raise Http404("No such turn.")
    if request.method == "POST":
        form = TurnForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            refused = _apply_edit(
                form,
                context,
                save=lambda: services.dialogue_turn_change(
                    case=case,
                    author=request.user,
                    operation=operation,
                    index=index,
                    base_number=data["base_number"],
                    speaker=data["speaker"],
                    text=data["text"],
                ),
                newer=lambda current: {"conflict_turns": current.content.get("turns", [])},
            )
            if refused is None:
                return _after_save(request, case, "dialogue-panel")
            form = refused
    else:
        turn = turns[index] if operation == services.TurnOperation.EDIT else {"speaker": "patient", "text": ""}
        form = TurnForm(initial={"base_number": context["dialogue"].number, **turn})
    context.update(editing_turn=index, turn_operation=operation, turn_form=form)
    return page_or_partial(request, TEMPLATE, "dialogue-panel", context)


@requires(REVIEW)
@require_POST
def dialogue_turn_move(request: ReviewRequest, case_id: int, index: int, operation: str) -> HttpResponse:
    """Delete a turn or move it up or down."""
    if operation not in (
        services.TurnOperation.DELETE,
        services.TurnOperation.MOVE_UP,
        services.TurnOperation.MOVE_DOWN,
    ):
        raise Http404("No such turn operation.")
    case = _case(case_id)
    _edit_context(request, case, ArtefactKind.DIALOGUE)
    form = TurnOperationForm(request.POST)
    error = "The form was incomplete; reload the item."
    if form.is_valid():
        try:
            services.dialogue_turn_change(
                case=case,
                author=request.user,
                operation=operation,
                index=index,
                base_number=form.cleaned_data["base_number"],
            )
        except services.ReviewError as refused:
            error = str(refused)
        else:
            return _after_save(request, case, "dialogue-panel")
    context = _edit_context(request, case, ArtefactKind.DIALOGUE)
    context["dialogue_error"] = error
    return page_or_partial(request, TEMPLATE, "dialogue-panel", context)
