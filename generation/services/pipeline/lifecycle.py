"""A case's way through the pipeline: started, moved on when a stage is done (or its
gate approved), finished by the reviewers' verdict, regenerated, retried."""

from __future__ import annotations

from functools import partial

from django.contrib.auth.models import User
from django.db import transaction

from generation import selectors
from generation.models import (
    AGENT_GENERATING_STATUS,
    NEXT_STAGE,
    REGENERATE_FROM,
    REVIEW_STAGE_BY_STATUS,
    REVIEW_STATUS_BY_STAGE,
    STAGE_FIRST_AGENT,
    STAGE_GENERATING_STATUS,
    VERDICT_STATUSES,
    AgentName,
    ArtefactKind,
    BatchStatus,
    Case,
    CaseStatus,
    InvalidTransition,
    PipelineStep,
    ReviewStage,
    StepStatus,
    SurveySnapshot,
)
from generation.models.text_limits import COMMENT_MAX_CHARS, text_within_limit
from generation.services.cases import case_transition, cases_transition
from generation.services.pipeline.control import batch_accepts_new_calls
from generation.services.pipeline.errors import (
    AdvanceNotAllowed,
    PipelineError,
    RegenerationNotAllowed,
    RetryNotAllowed,
)
from generation.services.pipeline.steps import first_steps_create, step_create, steps_enqueue

# What must exist before a stage can be regenerated.
STAGE_INPUT_KIND: dict[str, str] = {ReviewStage.NOTE: ArtefactKind.SCENARIO, ReviewStage.DIALOGUE: ArtefactKind.NOTE}


def case_start(*, case: Case) -> PipelineStep:
    """PLANNED -> generating the scenario, with the latest survey snapshot: cases_start for
    one case, its first step enqueued on commit. Raises InvalidTransition when the case is
    not planned."""
    with transaction.atomic():
        snapshot = selectors.latest_survey_snapshot()
        step_ids = cases_start(batch_id=case.batch_id, case_ids=[case.pk], snapshot=snapshot)
        case.refresh_from_db()
        if not step_ids:
            raise InvalidTransition(f"Case {case.pk} is {case.status}, not planned; it cannot start.")
        transaction.on_commit(partial(steps_enqueue, step_ids=step_ids))
    return PipelineStep.objects.get(pk=step_ids[0])


def cases_start(*, batch_id: int, case_ids: list[int], snapshot: SurveySnapshot | None) -> list[int]:
    """case_start for many cases of a batch, in a few statements whatever their number: the
    ones still PLANNED (another start may have taken some first) are locked, moved on with
    their batch's counters, given `snapshot` and their first step. Returns the steps' ids, for
    the caller to send once committed (steps_enqueue)."""
    with transaction.atomic():
        still_planned = (
            Case.objects.select_for_update()
            .filter(pk__in=case_ids, batch_id=batch_id, status=CaseStatus.PLANNED)
            .order_by("pk")  # two starts lock in the same order
        )
        planned_ids = list(still_planned.values_list("pk", flat=True))
        cases_transition(
            batch_id=batch_id, case_ids=planned_ids, current={CaseStatus.PLANNED}, to=CaseStatus.SCENARIO_GENERATING
        )
        Case.objects.filter(pk__in=planned_ids).update(survey_snapshot=snapshot)
        return first_steps_create(case_ids=planned_ids, agent=AgentName.SCENARIO_PROVIDER)


def _next_stage_start(*, case: Case, after: str, requested_by: User | None, expected: str | None = None) -> None:
    """Go on from a done (and, when gated, approved) stage: run the next stage's first
    agent, or send the pair to final review."""
    stage = NEXT_STAGE[after]
    if stage == ReviewStage.PAIR:
        case_transition(case=case, to=REVIEW_STATUS_BY_STAGE[stage], expected=expected)
        return
    case_transition(case=case, to=STAGE_GENERATING_STATUS[stage], expected=expected)
    step_create(case=case, agent=STAGE_FIRST_AGENT[stage], requested_by=requested_by)


def stage_done(*, case: Case, stage: str, gated: bool, requested_by: User | None) -> None:
    """The last agent of `stage` succeeded: the case waits at the stage's gate, or goes on.

    Part of the step's transaction. The steps that follow carry `requested_by`, so a
    regeneration's later stages are regenerations too."""
    generating = STAGE_GENERATING_STATUS[stage]
    if gated:
        case_transition(case=case, to=REVIEW_STATUS_BY_STAGE[stage], expected=generating)
    else:
        _next_stage_start(case=case, after=stage, requested_by=requested_by, expected=generating)


def case_advance_after_review(*, case: Case) -> None:
    """A clinician approved a gated stage: run the next agent, or (after the dialogue
    gate) send the pair to final review."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        stage = REVIEW_STAGE_BY_STATUS.get(case.status)
        if stage is None or stage not in NEXT_STAGE:
            raise AdvanceNotAllowed(
                f"Case {case.pk} is {case.get_status_display().lower()}, not waiting at a review gate."
            )
        _next_stage_start(case=case, after=stage, requested_by=None)


def case_finish(*, case: Case, status: str) -> None:
    """The reviewers' final verdict: approve or reject the case for good."""
    if status not in VERDICT_STATUSES:
        raise InvalidTransition(f"Case {case.pk}: {status} is not a final verdict.")
    with transaction.atomic():
        case_transition(case=case, to=status)


def case_regenerate(*, case: Case, stage: str, comment: str, requested_by: User | None) -> PipelineStep:
    """Re-run the first agent of `stage` with the reviewer's comment in its prompt.

    The outputs are stored as regenerated versions; the stages after it follow (a
    regenerated note gets a regenerated dialogue, since the dialogue is written from the
    polished note). Raises RegenerationNotAllowed when the case's status or content does
    not allow it.
    """
    if stage not in STAGE_FIRST_AGENT:
        raise RegenerationNotAllowed(f"Unknown stage {stage!r}; expected one of: {', '.join(STAGE_FIRST_AGENT)}.")
    # The comment goes into the agent's prompt.
    text_within_limit(comment.strip(), limit=COMMENT_MAX_CHARS, what="The comment")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        _ensure_batch_accepts_calls(case, error=RegenerationNotAllowed)
        if case.status not in REGENERATE_FROM[stage]:
            raise RegenerationNotAllowed(
                f"Case {case.pk} is {case.get_status_display().lower()}; its {stage} cannot be regenerated now."
            )
        needed = STAGE_INPUT_KIND.get(stage)
        if needed and selectors.current_version(case=case, kind=needed) is None:
            raise RegenerationNotAllowed(f"Case {case.pk} has no {needed} yet, so its {stage} cannot be regenerated.")
        if stage == ReviewStage.SCENARIO:
            # A reviewer's request starts a fresh revision budget for the judge loop.
            Case.objects.filter(pk=case.pk).update(scenario_revisions=0)
        case_transition(case=case, to=STAGE_GENERATING_STATUS[stage])
        step = step_create(
            case=case, agent=STAGE_FIRST_AGENT[stage], feedback=comment.strip(), requested_by=requested_by
        )
    return step


def case_retry(*, case: Case) -> PipelineStep:
    """Run a failed case's failed step again (a new attempt of the same agent, with the
    same feedback), e.g. after a provider outage outlasted the retry budget."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        _ensure_batch_accepts_calls(case, error=RetryNotAllowed)
        if case.status != CaseStatus.FAILED:
            raise RetryNotAllowed(f"Case {case.pk} is {case.get_status_display().lower()}, not failed.")
        failed = case.steps.filter(status=StepStatus.FAILED).order_by("-created_at", "-id").first()
        if failed is None:
            raise RetryNotAllowed(f"Case {case.pk} has no failed step to run again.")
        case_transition(case=case, to=AGENT_GENERATING_STATUS[failed.agent])
        step = step_create(case=case, agent=failed.agent, feedback=failed.feedback, requested_by=failed.requested_by)
    return step


def _ensure_batch_accepts_calls(case: Case, *, error: type[PipelineError]) -> None:
    """A paused or cancelled batch runs no agent, so nothing is queued that would only wait."""
    if batch_accepts_new_calls(case.batch):
        return
    if case.batch.status == BatchStatus.PAUSED:
        raise error(f"The batch of case {case.pk} is paused: an admin resumes it on the batch page first.")
    raise error(f"The batch of case {case.pk} was cancelled: no agent runs for it any more.")
