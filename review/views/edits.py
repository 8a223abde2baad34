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
from generation.selectors import current_version
from review import selectors, services
from review.forms import NoteSectionForm, TurnForm, TurnOperationForm, note_section_is_known
from review.views._common import REVIEW, ReviewRequest, case_to_act_on, page_or_partial, queue_for, requires
from review.views.item import TEMPLATE, artefacts_context, editable_kinds, item_context, item_url

Focus = Callable[[dict[str, Any]], dict[str, Any]]


def _after_save(request: ReviewRequest, case: Case, saved: str, focus: Focus | None = None) -> HttpResponse:
    """The `saved` partial of the new version: one section, one turn, or the whole dialogue once
    turns moved. It brings the new version number out of band and leaves the decision panel,
    and any other open editor, alone, so it needs only the artefacts' context. The user may
    still act on the case: the save was allowed under the case's lock, and an edit neither
    disputes a case nor assigns it to others. `focus` adds what the partial shows to the context."""
    if not request.htmx:
        return redirect(item_url(case.pk, queue_for(request, case)))
    context = artefacts_context(request, case, action_refusal="")
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


Refused = tuple[Any, HTTPStatus, dict[str, Any]]


def _apply_edit(
    form: Any, *, save: Callable[[], object], newer: Callable[[ArtefactVersion], dict[str, Any]]
) -> Refused | None:
    """Run `save`. None when it worked; otherwise the form to show again, its status and what
    to add to the context: 400 with the refusal, or 409 on a conflict, rebased on the newer
    version whose text `newer` gives. Not 2xx, so the page keeps its copy of the text."""
    with on_refusal(partial(form.add_error, None)):
        try:
            save()
        except services.EditConflict as conflict:
            return _rebased_on_conflict(form, conflict), HTTPStatus.CONFLICT, newer(conflict.current)
        return None
    return form, HTTPStatus.BAD_REQUEST, {}


def _editable_version(case: Case, kind: str) -> ArtefactVersion:
    """The current `kind` version of a case the user may act on (case_to_act_on answered 403
    otherwise), or 404 when its stage does not edit that artefact or it has none."""
    stage = selectors.stage_for_case(case=case)
    version = current_version(case=case, kind=kind)
    if version is None or kind not in editable_kinds(stage=stage, action_refusal=""):
        raise Http404(f"This {kind} cannot be edited now.")
    return version


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
    note = _editable_version(case, ArtefactKind.NOTE)
    field_ids = f"id_{section}_%s"  # several sections can be open at once
    shown: dict[str, Any] = {}
    if request.method == "POST":
        form = NoteSectionForm(request.POST, auto_id=field_ids)
        status = HTTPStatus.BAD_REQUEST
        if form.is_valid():
            data = form.cleaned_data
            refused = _apply_edit(
                form,
                save=lambda: services.note_section_edit(
                    case=case, author=request.user, section=section, text=data["text"], base_number=data["base_number"]
                ),
                newer=lambda current: {"conflict_text": str(current.content.get(section) or "")},
            )
            if refused is None:
                return _after_save(
                    request, case, "note-section-saved", lambda saved: {"section": _section(section, saved)}
                )
            form, status, shown = refused
    else:
        status = HTTPStatus.OK
        form = NoteSectionForm(
            initial={"base_number": note.number, "text": _section(section, {"note": note})["text"]},
            auto_id=field_ids,
        )
    context = item_context(request, case, **shown)
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
    dialogue = _editable_version(case, ArtefactKind.DIALOGUE)
    turns = list((dialogue.content or {}).get("turns", []))
    if operation == services.TurnOperation.EDIT and not 0 <= index < len(turns):
        raise Http404("No such turn.")
    inserting = operation == services.TurnOperation.INSERT_AFTER
    field_ids = f"id_turn{index}_{operation}_%s"
    shown: dict[str, Any] = {}
    if request.method == "POST":
        form = TurnForm(request.POST, auto_id=field_ids)
        status = HTTPStatus.BAD_REQUEST
        if form.is_valid():
            data = form.cleaned_data
            refused = _apply_edit(
                form,
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
            form, status, shown = refused
    else:
        status = HTTPStatus.OK
        turn = {"speaker": "patient", "text": ""} if inserting else turns[index]
        form = TurnForm(initial={"base_number": dialogue.number, **turn}, auto_id=field_ids)
    context = item_context(request, case, **shown)
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
    _editable_version(case, ArtefactKind.DIALOGUE)
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
    context = item_context(request, case)
    context["dialogue_error"] = refusals[0] if refusals else "The form was incomplete; reload the item."
    return page_or_partial(request, TEMPLATE, "dialogue-panel", context, status=HTTPStatus.BAD_REQUEST)
