"""Inline edits: each save changes one SOAP section or one dialogue turn, and several
editors can be open at once. Each save is a new version; a stale save is refused, its text
kept in the form and stored as a draft."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import retarget

from generation.errors import on_refusal
from generation.models import NOTE_FIELD_LABELS, ArtefactKind, ArtefactVersion, Case
from review import services
from review.forms import NoteSectionForm, TurnForm, TurnOperationForm, note_section_is_known
from review.views._common import REVIEW, ReviewRequest, case_to_act_on, page_or_partial, queue_for, requires
from review.views.item import TEMPLATE, item_context, item_url

Focus = Callable[[dict[str, Any]], dict[str, Any]]


def _after_save(request: ReviewRequest, case: Case, saved: str, focus: Focus | None = None) -> HttpResponse:
    """The `saved` partial of the new version: one section, one turn, or the whole dialogue once
    turns moved. It brings the new version number out of band and leaves the decision panel,
    and any other open editor, alone. `focus` adds what the partial shows to the item context."""
    if not request.htmx:
        return redirect(item_url(case.pk, queue_for(request, case)))
    context = item_context(request, case)
    if focus is not None:
        context.update(focus(context))
    return page_or_partial(request, TEMPLATE, saved, context)


def _rebased_on_conflict(form: Any, conflict: services.EditConflict) -> Any:
    """The reviewer's text, now based on the newer version, so a second save is deliberate."""
    data = form.data.copy()
    data["base_number"] = str(conflict.current.number)
    rebased = type(form)(data, auto_id=form.auto_id)
    rebased.is_valid()
    rebased.add_error(None, str(conflict))
    return rebased


def _apply_edit(
    form: Any,
    context: dict[str, Any],
    *,
    save: Callable[[], object],
    newer: Callable[[ArtefactVersion], dict[str, Any]],
) -> tuple[Any, HTTPStatus] | None:
    """Run `save`. None when it worked; otherwise the form to show again and its status: 400
    with the refusal, or 409 on a conflict, rebased on the newer version whose text goes into
    the context. Not 2xx, so the page keeps its copy of the text."""
    with on_refusal(partial(form.add_error, None)):
        try:
            save()
        except services.EditConflict as conflict:
            context.update(newer(conflict.current))
            return _rebased_on_conflict(form, conflict), HTTPStatus.CONFLICT
        return None
    return form, HTTPStatus.BAD_REQUEST


def _edit_context(request: ReviewRequest, case: Case, kind: str) -> dict[str, Any]:
    """The item context, or 404 when the case's `kind` artefact cannot be edited now."""
    context = item_context(request, case)
    if context[kind] is None or kind not in context["editable"]:
        raise Http404(f"This {kind} cannot be edited now.")
    return context


def _section(key: str, context: dict[str, Any]) -> dict[str, str]:
    note = context["note"]
    text = str((note.content if note else {}).get(key) or "")
    return {"key": key, "label": NOTE_FIELD_LABELS[key], "text": text}


def _turn(index: int, context: dict[str, Any]) -> dict[str, Any]:
    turns = context["turns"]
    return {"index": index, "turn": turns[index], "is_last": index == len(turns) - 1}


@requires(REVIEW)
@require_http_methods(["GET", "POST"])
def note_section_edit(request: ReviewRequest, case_id: int, section: str) -> HttpResponse:
    if not note_section_is_known(section):
        raise Http404("No such note section.")
    case = case_to_act_on(request, case_id)
    context = _edit_context(request, case, ArtefactKind.NOTE)
    field_ids = f"id_{section}_%s"  # several sections can be open at once
    status = HTTPStatus.OK
    if request.method == "POST":
        form = NoteSectionForm(request.POST, auto_id=field_ids)
        status = HTTPStatus.BAD_REQUEST
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
                return _after_save(
                    request, case, "note-section-saved", lambda saved: {"section": _section(section, saved)}
                )
            form, status = refused
    else:
        form = NoteSectionForm(
            initial={"base_number": context["note"].number, "text": _section(section, context)["text"]},
            auto_id=field_ids,
        )
    context.update(editing_section=section, section_form=form, section=_section(section, context))
    return page_or_partial(request, TEMPLATE, "note-section", context, status=status)


@requires(REVIEW)
@require_http_methods(["GET", "POST"])
def dialogue_turn_edit(request: ReviewRequest, case_id: int, index: int, operation: str) -> HttpResponse:
    """Edit turn `index` in place, or (operation "insert") add a new turn after it. Each editor
    is its own list item, so several can be open at once."""
    if operation not in (services.TurnOperation.EDIT, services.TurnOperation.INSERT_AFTER):
        raise Http404("No such turn operation.")
    case = case_to_act_on(request, case_id)
    context = _edit_context(request, case, ArtefactKind.DIALOGUE)
    turns = context["turns"]
    if operation == services.TurnOperation.EDIT and not 0 <= index < len(turns):
        raise Http404("No such turn.")
    inserting = operation == services.TurnOperation.INSERT_AFTER
    field_ids = f"id_turn{index}_{operation}_%s"
    status = HTTPStatus.OK
    if request.method == "POST":
        form = TurnForm(request.POST, auto_id=field_ids)
        status = HTTPStatus.BAD_REQUEST
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
                if inserting:  # the turns after it are renumbered: the whole dialogue again
                    return retarget(_after_save(request, case, "dialogue-panel-saved"), "#dialogue-panel")
                return _after_save(request, case, "turn-saved", partial(_turn, index))
            form, status = refused
    else:
        turn = {"speaker": "patient", "text": ""} if inserting else turns[index]
        form = TurnForm(initial={"base_number": context["dialogue"].number, **turn}, auto_id=field_ids)
    context.update(editing_turn=index, turn_operation=operation, turn_form=form)
    if inserting:
        context["index"] = index
        return page_or_partial(request, TEMPLATE, "new-turn", context, status=status)
    context.update(_turn(index, context))
    return page_or_partial(request, TEMPLATE, "turn", context, status=status)


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
    case = case_to_act_on(request, case_id)
    _edit_context(request, case, ArtefactKind.DIALOGUE)
    form = TurnOperationForm(request.POST)
    refusals: list[str] = []
    if form.is_valid():
        with on_refusal(refusals.append):
            services.dialogue_turn_change(
                case=case,
                author=request.user,
                operation=operation,
                index=index,
                base_number=form.cleaned_data["base_number"],
            )
            return _after_save(request, case, "dialogue-panel-saved")
    context = _edit_context(request, case, ArtefactKind.DIALOGUE)
    context["dialogue_error"] = refusals[0] if refusals else "The form was incomplete; reload the item."
    return page_or_partial(request, TEMPLATE, "dialogue-panel", context, status=HTTPStatus.BAD_REQUEST)
