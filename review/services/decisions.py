"""Writes of the review workspace: decisions and their consequences, inline edits
(each a new immutable version, with optimistic locking), regeneration requests,
assignments, the survey and guidelines."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from generation.models import (
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    ReviewStage,
    SurveySnapshot,
)
from generation.models import VersionSource as Source
from generation.services.cases import artefact_version_create, case_transition, latest_version
from review import selectors
from review.models import (
    Guideline,
    ReviewAction,
    ReviewDecision,
    ReviewerAssignment,
    SurveyResponse,
    VariableSuggestion,
)

# An open item left in a tab overnight should not record a twelve-hour decision.
MAX_SECONDS_SPENT = 4 * 3600
SPEAKERS = ("doctor", "patient")


class ReviewError(ValueError):
    """A review action that cannot be carried out; the message is shown to the reviewer."""


class StaleReview(ReviewError):
    """The reviewer decided on versions that are no longer the current ones."""


class EditConflict(ReviewError):
    """Someone saved a newer version first; the reviewer's text was kept as a draft."""

    def __init__(self, *, draft: ArtefactVersion, current: ArtefactVersion) -> None:
        self.draft, self.current = draft, current
        super().__init__(self._message())

    def _message(self) -> str:
        author = self.current.author or "the pipeline"
        return (
            f"{author} saved version {self.current.number} while you were editing, so your change was not applied. "
            f"Your text is still in the form and was kept as draft version {self.draft.number}."
        )


def seconds_since(opened_at: datetime | None) -> int:
    if opened_at is None:
        return 0
    elapsed = (timezone.now() - opened_at).total_seconds()
    return int(min(max(elapsed, 0), MAX_SECONDS_SPENT))


# --- Decisions -------------------------------------------------------------------


def _review_stage(case: Case) -> str:
    stage = selectors.stage_for_case(case=case)
    if stage is None:
        raise ReviewError(f"Case {case.pk} is {case.get_status_display().lower()}; it is not awaiting review.")
    return stage


def _seen_versions(*, case: Case, stage: str, seen: Mapping[str, int]) -> dict[str, ArtefactVersion]:
    """The current versions, after checking they are the ones the reviewer looked at."""
    current = selectors.current_versions(case=case)
    for kind in selectors.VISIBLE_KINDS[stage]:
        version = current.get(kind)
        if kind in seen and version is not None and seen[kind] != version.number:
            raise StaleReview(
                f"The {kind} changed (now version {version.number}, you saw version {seen[kind]}). "
                "Reload the item and look again before deciding."
            )
    return {kind: current[kind] for kind in selectors.VISIBLE_KINDS[stage] if kind in current}


def _finish(case: Case, status: str) -> None:
    """Approve or reject for good, and recount the batch's progress."""
    from generation.services.pipeline import batch_progress_refresh

    case_transition(case=case, to=status)
    batch_progress_refresh(batch_id=case.batch_id)


def _advance_after_approval(case: Case, stage: str) -> None:
    if stage == ReviewStage.PAIR:
        _finish(case, CaseStatus.APPROVED)
        return
    from generation.services.pipeline import case_advance_after_review

    case_advance_after_review(case=case)


def _settle_round(case: Case, stage: str) -> None:
    """Once the required number of reviews is in: unanimous approval advances the case,
    unanimous refusal rejects it, a split goes to adjudication."""
    verdicts = [
        d.action
        for d in selectors.round_decisions(case=case).filter(
            is_adjudication=False, action__in=selectors.VERDICT_ACTIONS
        )
    ]
    if len(verdicts) < case.reviews_required:
        return
    accepted = sum(action in selectors.ACCEPTING_ACTIONS for action in verdicts)
    if accepted == len(verdicts):
        _advance_after_approval(case, stage)
    elif accepted == 0:
        _finish(case, CaseStatus.REJECTED)
    elif stage == ReviewStage.PAIR:
        case_transition(case=case, to=CaseStatus.ADJUDICATION)
    # A split on a gated stage stays in its status and shows in the adjudication queue.


def _edited_in_round(case: Case, reviewer: User) -> bool:
    return case.versions.filter(
        source=Source.HUMAN_EDIT, author=reviewer, created_at__gte=case.status_changed_at
    ).exists()


def _record(
    *,
    case: Case,
    stage: str,
    reviewer: User,
    action: str,
    versions: Mapping[str, ArtefactVersion],
    opened_at: datetime | None,
    reason: str = "",
    comment: str = "",
    is_adjudication: bool = False,
) -> ReviewDecision:
    decision = ReviewDecision.objects.create(
        case=case,
        stage=stage,
        reviewer=reviewer,
        action=action,
        scenario_version=versions.get(ArtefactKind.SCENARIO),
        note_version=versions.get(ArtefactKind.NOTE),
        dialogue_version=versions.get(ArtefactKind.DIALOGUE),
        reason=reason,
        comment=comment.strip(),
        seconds_spent=seconds_since(opened_at),
        is_adjudication=is_adjudication,
    )
    ReviewerAssignment.objects.filter(case=case, stage=stage, reviewer=reviewer, completed_at__isnull=True).update(
        completed_at=timezone.now()
    )
    return decision


def _refuse_incomplete(action: str, *, allowed: tuple[str, ...], reason: str, comment: str) -> None:
    if action not in allowed:
        raise ReviewError(f"{action!r} is not possible here; choose one of: {', '.join(allowed)}.")
    if action == ReviewAction.REJECT and not (reason and comment.strip()):
        raise ReviewError("A rejection needs a reason and a comment.")


def _lock(case: Case) -> Case:
    return Case.objects.select_for_update().select_related("batch").get(pk=case.pk)


def review_decision_record(
    *,
    case: Case,
    reviewer: User,
    action: str,
    seen: Mapping[str, int],
    opened_at: datetime | None,
    reason: str = "",
    comment: str = "",
) -> ReviewDecision:
    """Record one reviewer's approve / reject / skip and apply what it implies."""
    _refuse_incomplete(
        action, allowed=(ReviewAction.APPROVE, ReviewAction.REJECT, ReviewAction.SKIP), reason=reason, comment=comment
    )
    with transaction.atomic():
        case = _lock(case)
        if case.status == CaseStatus.ADJUDICATION:
            raise ReviewError("This case awaits adjudication; an admin decides it.")
        stage = _review_stage(case)
        if selectors.reviewer_has_decided(case=case, reviewer=reviewer):
            raise ReviewError("You have already decided this item in this round.")
        versions = _seen_versions(case=case, stage=stage, seen=seen)
        if action == ReviewAction.APPROVE and _edited_in_round(case, reviewer):
            action = ReviewAction.EDIT
        decision = _record(
            case=case,
            stage=stage,
            reviewer=reviewer,
            action=action,
            versions=versions,
            opened_at=opened_at,
            reason=reason,
            comment=comment,
        )
        if action != ReviewAction.SKIP:
            _settle_round(case, stage)
    return decision


def adjudication_record(
    *,
    case: Case,
    adjudicator: User,
    action: str,
    seen: Mapping[str, int],
    opened_at: datetime | None,
    reason: str = "",
    comment: str = "",
) -> ReviewDecision:
    """An admin's final word on a disputed case: approve advances it, reject rejects it."""
    _refuse_incomplete(action, allowed=(ReviewAction.APPROVE, ReviewAction.REJECT), reason=reason, comment=comment)
    with transaction.atomic():
        case = _lock(case)
        stage = _review_stage(case)
        versions = _seen_versions(case=case, stage=stage, seen=seen)
        decision = _record(
            case=case,
            stage=stage,
            reviewer=adjudicator,
            action=action,
            versions=versions,
            opened_at=opened_at,
            reason=reason,
            comment=comment,
            is_adjudication=True,
        )
        if action == ReviewAction.APPROVE:
            _advance_after_approval(case, stage)
        else:
            _finish(case, CaseStatus.REJECTED)
    return decision


def regeneration_request(
    *,
    case: Case,
    reviewer: User,
    target: str,
    comment: str,
    seen: Mapping[str, int],
    opened_at: datetime | None,
) -> ReviewDecision:
    """Send an artefact back to its agent with the reviewer's comment as feedback."""
    if not comment.strip():
        raise ReviewError("Say what the agent should change: a regeneration needs a comment.")
    from generation.services.pipeline import case_regenerate

    with transaction.atomic():
        case = _lock(case)
        stage = _review_stage(case)
        allowed = selectors.VISIBLE_KINDS[stage] if stage == ReviewStage.PAIR else (stage,)
        if target not in allowed:
            raise ReviewError(f"From the {stage} stage you can regenerate: {', '.join(allowed)}.")
        versions = _seen_versions(case=case, stage=stage, seen=seen)
        decision = _record(
            case=case,
            stage=stage,
            reviewer=reviewer,
            action=ReviewAction.REGENERATE,
            versions=versions,
            opened_at=opened_at,
            comment=comment,
        )
        case_regenerate(case=case, stage=target, comment=comment.strip(), requested_by=reviewer)
    return decision


# --- Inline edits ------------------------------------------------------------------


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
    with transaction.atomic():
        case = _lock(case)
        stage = _review_stage(case)
        if kind not in selectors.EDITABLE_KINDS[stage]:
            raise ReviewError(f"The {kind} cannot be edited at the {stage} stage.")
        base = case.versions.filter(kind=kind, number=base_number).first()
        current = latest_version(case=case, kind=kind)
        if base is None or current is None:
            raise ReviewError(f"There is no {kind} version {base_number} to edit.")
        content = change(copy.deepcopy(base.content))
        if current.pk != base.pk:
            draft = artefact_version_create(
                case=case, kind=kind, content=content, source=Source.HUMAN_DRAFT, author=author, parent=base
            )
            conflict = EditConflict(draft=draft, current=current)
        else:
            return artefact_version_create(
                case=case, kind=kind, content=content, source=Source.HUMAN_EDIT, author=author, parent=base
            )
    # Raised after the atomic block so the draft is committed, never rolled back.
    raise conflict


def note_section_edit(*, case: Case, author: User, section: str, text: str, base_number: int) -> ArtefactVersion:
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

    def change(content: dict[str, Any]) -> dict[str, Any]:
        content["turns"] = _changed_turns(
            list(content.get("turns", [])), operation=operation, index=index, speaker=speaker, text=text
        )
        return content

    return _edit_version(case=case, kind=ArtefactKind.DIALOGUE, author=author, base_number=base_number, change=change)


# --- Admin: assignments ----------------------------------------------------------------


def reviewers_assign(
    *, case: Case, stage: str, reviewers: Iterable[User], assigned_by: User
) -> list[ReviewerAssignment]:
    assignments = []
    for reviewer in reviewers:
        assignment, _created = ReviewerAssignment.objects.get_or_create(
            case=case, stage=stage, reviewer=reviewer, defaults={"assigned_by": assigned_by}
        )
        assignments.append(assignment)
    return assignments


# --- Survey ----------------------------------------------------------------------------


def survey_answers_save(
    *,
    clinician: User,
    round_number: int,
    answers: Mapping[int, tuple[int, str]],
    new_variable: tuple[str, str] | None = None,
) -> None:
    """Store a clinician's scores (variable id -> (score, suggestion)) for the open round."""
    with transaction.atomic():
        for variable_id, (score, suggestion) in answers.items():
            SurveyResponse.objects.update_or_create(
                clinician=clinician,
                variable_id=variable_id,
                round=round_number,
                defaults={"score": score, "suggestion": suggestion.strip()},
            )
        if new_variable and new_variable[0].strip():
            name, description = new_variable
            VariableSuggestion.objects.create(
                clinician=clinician, round=round_number, name=name.strip(), description=description.strip()
            )


def survey_snapshot_publish(*, published_by: User, notes: str = "") -> SurveySnapshot:
    """Freeze the open round's means and spreads as the next snapshot; new generations use it."""
    with transaction.atomic():
        round_number = selectors.survey_round_current()
        aggregates = [a for a in selectors.survey_aggregate(round_number=round_number) if a.mean is not None]
        if not aggregates:
            raise ReviewError("Nobody has answered the survey in this round yet.")
        return SurveySnapshot.objects.create(
            version=round_number,
            weights={a.variable.key: a.mean for a in aggregates},
            spread={a.variable.key: a.spread if a.spread is not None else 0.0 for a in aggregates},
            respondents=selectors.survey_respondent_count(round_number=round_number),
            published_by=published_by,
            notes=notes.strip(),
        )


# --- Guidelines ------------------------------------------------------------------------


def guideline_save(*, guideline: Guideline, title: str, body_markdown: str, editor: User) -> Guideline:
    guideline.title = title.strip()
    guideline.body_markdown = body_markdown
    guideline.updated_by = editor
    guideline.save(update_fields=["title", "body_markdown", "updated_by", "updated_at"])
    return guideline
