"""Inline edits: each save is a new immutable version; a save based on a version that is
no longer the current one is kept as a draft and refused (optimistic locking).

The edited content is built, rendered and checked before the transaction; under the
case's lock the save only compares version numbers and writes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from generation.models import ArtefactKind, ArtefactVersion, Case
from generation.models import VersionSource as Source
from generation.models.text_limits import DIALOGUE_TURN_MAX_CHARS, NOTE_SECTION_MAX_CHARS, text_within_limit
from generation.selectors import current_version
from generation.services.cases import artefact_version_draft, artefact_version_write
from review import access, selectors
from review.services._common import case_lock, refuse_unless_may_act, review_stage
from review.services.errors import EditConflict, ReviewError


def _edit_version(
    *,
    case: Case,
    kind: str,
    author: User,
    base_number: int,
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> ArtefactVersion:
    """Apply `change` to the base version as a new HUMAN_EDIT version, or, when someone
    saved a newer version meanwhile, keep the change as a HUMAN_DRAFT and refuse."""
    base = case.versions.filter(kind=kind, number=base_number).first()
    if base is None:
        raise ReviewError(f"There is no {kind} version {base_number} to edit.")
    edited = artefact_version_draft(case=case, kind=kind, content=change(copy.deepcopy(base.content)))
    with transaction.atomic():
        case = case_lock(case)
        stage = review_stage(case)
        refuse_unless_may_act(case, author)
        if kind not in selectors.EDITABLE_KINDS[stage]:
            raise ReviewError(f"The {kind} cannot be edited at the {stage} stage.")
        current = current_version(case=case, kind=kind)
        if current is None:
            raise ReviewError(f"There is no {kind} version {base_number} to edit.")
        if current.pk != base.pk:
            draft = artefact_version_write(
                case=case, draft=edited, source=Source.HUMAN_DRAFT, author=author, parent=base
            )
            names_author = selectors.sees_others_work(
                case=case, viewer=author, can_adjudicate=access.is_adjudicator(author)
            )
            conflict = EditConflict(draft=draft, current=current, names_author=names_author)
        else:
            return artefact_version_write(case=case, draft=edited, source=Source.HUMAN_EDIT, author=author, parent=base)
    # Raised after the atomic block so the draft is committed, never rolled back.
    raise conflict


def note_section_edit(*, case: Case, author: User, section: str, text: str, base_number: int) -> ArtefactVersion:
    text_within_limit(text.strip(), limit=NOTE_SECTION_MAX_CHARS, what="The section")

    def change(content: dict[str, Any]) -> dict[str, Any]:
        content[section] = text.strip()
        return content

    return _edit_version(case=case, kind=ArtefactKind.NOTE, author=author, base_number=base_number, change=change)


class TurnOperation:
    EDIT = "edit"
    INSERT_AFTER = "insert"
    DELETE = "delete"
    MOVE_UP = "up"
    MOVE_DOWN = "down"
    ALL = (EDIT, INSERT_AFTER, DELETE, MOVE_UP, MOVE_DOWN)


def _changed_turns(
    turns: list[dict[str, Any]], *, operation: str, index: int, speaker: str, text: str
) -> list[dict[str, Any]]:
    if operation == TurnOperation.INSERT_AFTER:
        turns.insert(index + 1, {"speaker": speaker, "text": text.strip()})
        return turns
    if not 0 <= index < len(turns):
        raise ReviewError(f"There is no turn {index + 1}.")
    if operation == TurnOperation.EDIT:
        turns[index] = {**turns[index], "speaker": speaker, "text": text.strip()}
    elif operation == TurnOperation.DELETE:
        if len(turns) == 1:
            raise ReviewError("A dialogue needs at least one turn.")
        del turns[index]
    else:
        other = index - 1 if operation == TurnOperation.MOVE_UP else index + 1
        if not 0 <= other < len(turns):
            raise ReviewError("That turn cannot move further.")
        turns[index], turns[other] = turns[other], turns[index]
    return turns


def dialogue_turn_change(
    *,
    case: Case,
    author: User,
    operation: str,
    index: int,
    base_number: int,
    speaker: str = "",
    text: str = "",
) -> ArtefactVersion:
    """Edit, insert, delete or move one dialogue turn, as a new version."""
    if operation not in TurnOperation.ALL:
        raise ReviewError(f"Unknown turn operation {operation!r}.")
    text_within_limit(text.strip(), limit=DIALOGUE_TURN_MAX_CHARS, what="The turn")

    def change(content: dict[str, Any]) -> dict[str, Any]:
        content["turns"] = _changed_turns(
            list(content.get("turns", [])), operation=operation, index=index, speaker=speaker, text=text
        )
        return content

    return _edit_version(case=case, kind=ArtefactKind.DIALOGUE, author=author, base_number=base_number, change=change)
