"""Decisions and their consequences: a reviewer's approve / reject / skip, an admin's
adjudication, and a request to regenerate an artefact. Once a round has its reviews, the
case advances, is rejected, or goes to adjudication. Which verdicts belong to the round
(those on the current content: an edit or a regeneration starts a new round) is
review.selectors' rule; who may act on a case is review.access'."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from generation.models import ArtefactKind, ArtefactVersion, Case, CaseStatus, ReviewStage
from generation.models.text_limits import COMMENT_MAX_CHARS, text_within_limit
from generation.selectors import current_versions
from generation.services.cases import case_transition
from generation.services.pipeline import case_advance_after_review, case_finish, case_regenerate
from review import access, selectors
from review.models import RejectReason, ReviewAction, ReviewDecision, ReviewerAssignment
from review.services._common import case_lock, refuse_unless_may_act, review_stage
from review.services.codes import APPROVAL_NEEDS_CODE
from review.services.edit_burden import edit_burden_record_on_commit
from review.services.errors import ReviewError, StaleReview
from review.services.limits import regeneration_allowance_check

# An open item left in a tab overnight should not record a twelve-hour decision.
MAX_SECONDS_SPENT = 4 * 3600


def seconds_since(opened_at: datetime | None) -> int:
    if opened_at is None:
        return 0
    elapsed = (timezone.now() - opened_at).total_seconds()
    return int(min(max(elapsed, 0), MAX_SECONDS_SPENT))


def _seen_versions(*, case: Case, stage: str, seen: Mapping[str, int]) -> dict[str, ArtefactVersion]:
    """The current versions, after checking they are the ones the reviewer looked at."""
    current = current_versions(case=case)
    for kind in selectors.VISIBLE_KINDS[stage]:
        version = current.get(kind)
        if kind in seen and version is not None and seen[kind] != version.number:
            raise StaleReview(
                f"The {kind} changed (now version {version.number}, you saw version {seen[kind]}). "
                "Reload the item and look again before deciding."
            )
    return {kind: current[kind] for kind in selectors.VISIBLE_KINDS[stage] if kind in current}


def _refuse_approval_without_code(case: Case, action: str) -> None:
    if action == ReviewAction.APPROVE and case.code_id is None:
        raise ReviewError(APPROVAL_NEEDS_CODE)


def _advance_after_approval(case: Case, stage: str) -> None:
    if stage == ReviewStage.PAIR:
        case_finish(case=case, status=CaseStatus.APPROVED)
        edit_burden_record_on_commit(case_id=case.pk)
    else:
        case_advance_after_review(case=case)


def _settle_round(case: Case, stage: str) -> None:
    """Once the required number of reviews is in: unanimous approval advances the case,
    unanimous refusal rejects it, a split goes to adjudication."""
    tally = selectors.round_tally(case=case)
    if tally.reviews < case.reviews_required:
        return
    if tally.refusals == 0:
        _advance_after_approval(case, stage)
    elif tally.accepts == 0:
        case_finish(case=case, status=CaseStatus.REJECTED)
    elif stage == ReviewStage.PAIR:
        case_transition(case=case, to=CaseStatus.ADJUDICATION)
    # A split on a gated stage stays in its status and shows in the adjudication queue.


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
    if reason and reason not in RejectReason.values:
        raise ReviewError(f"{reason!r} is not a reason to reject; choose one from the list.")
    text_within_limit(comment, limit=COMMENT_MAX_CHARS, what="The comment")


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
        case = case_lock(case)
        stage = review_stage(case)
        # A disputed case is settled by adjudication_record, not by one more review.
        if selectors.case_is_disputed(case=case):
            raise ReviewError(access.AWAITS_ADJUDICATION)
        refuse_unless_may_act(case, reviewer)
        if selectors.reviewer_has_decided(case=case, reviewer=reviewer):
            raise ReviewError("You have already decided this item in this round.")
        _refuse_approval_without_code(case, action)
        versions = _seen_versions(case=case, stage=stage, seen=seen)
        if action == ReviewAction.APPROVE and selectors.reviewer_has_edited(case=case, reviewer=reviewer):
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
        case = case_lock(case)
        stage = review_stage(case)
        _refuse_approval_without_code(case, action)
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
            case_finish(case=case, status=CaseStatus.REJECTED)
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
    text_within_limit(comment, limit=COMMENT_MAX_CHARS, what="The comment")
    with transaction.atomic():
        regeneration_allowance_check(reviewer=reviewer)
        case = case_lock(case)
        stage = review_stage(case)
        allowed = selectors.VISIBLE_KINDS[stage] if stage == ReviewStage.PAIR else (stage,)
        if target not in allowed:
            raise ReviewError(f"From the {stage} stage you can regenerate: {', '.join(allowed)}.")
        refuse_unless_may_act(case, reviewer)
        case.assigned_code()  # the agents write for the case's code
        # A regeneration starts a new round for everyone; one who has given their verdict
        # on this round may not discard the others' reviews. A reviewer who has not
        # decided yet may: their request is their verdict.
        if selectors.reviewer_has_decided(case=case, reviewer=reviewer):
            raise ReviewError(
                "You have already decided this item in this round; "
                "sending it back now would discard the other reviewers' work."
            )
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
