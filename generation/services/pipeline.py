"""The MedSynth pipeline, one agent step at a time.

Each step is a PipelineStep row keyed by (case, agent, attempt) and run by one Celery
task (generation.tasks.run_pipeline_step). A step claims its row before calling the
model, stores its output as a new immutable ArtefactVersion, moves the case through its
state machine and creates the next step, all in one transaction; the next task is
enqueued only after that commit. A redelivered task finds its step done and returns.

    provider -> judge -(reject: revision with feedback, capped)-> provider
             -> [scenario gate] -> note writer -> note polisher -> [note gate]
             -> dialogue generator (from the POLISHED note) -> dialogue polisher
             -> [dialogue gate] -> final pair review
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from pydantic import BaseModel

from generation import rendering, selectors, similarity
from generation.agents import (
    dialogue_generator,
    dialogue_polisher,
    note_polisher,
    note_writer,
    scenario_judge,
    scenario_provider,
)
from generation.agents.limits import OutputLimits, bounded_schema
from generation.agents.prompting import Message, messages_without_system, ranked_variables
from generation.examples import WorkedExample, examples_for_code
from generation.llm import LlmCallError, LlmResult, structured_completion
from generation.models import (
    FAILED_STATUSES,
    IN_FLIGHT_STATUSES,
    AgentName,
    ArtefactKind,
    ArtefactVersion,
    BatchStatus,
    Case,
    CaseStatus,
    GenerationBatch,
    InvalidTransition,
    LlmEndpoint,
    PhysicianRole,
    PipelineStep,
    QualityVariable,
    ReviewStage,
    StepStatus,
    VersionSource,
)
from generation.services.cases import artefact_version_create, case_transition, latest_version

logger = logging.getLogger(__name__)

AGENT_MODULES = {
    AgentName.SCENARIO_PROVIDER: scenario_provider,
    AgentName.SCENARIO_JUDGE: scenario_judge,
    AgentName.NOTE_WRITER: note_writer,
    AgentName.NOTE_POLISHER: note_polisher,
    AgentName.DIALOGUE_GENERATOR: dialogue_generator,
    AgentName.DIALOGUE_POLISHER: dialogue_polisher,
}
DEFAULT_TEMPERATURES: dict[str, float] = {agent: module.DEFAULT_TEMPERATURE for agent, module in AGENT_MODULES.items()}
DEFAULT_MAX_SCENARIO_REVISIONS = 5
DEFAULT_EXAMPLES_PER_PROMPT = 2
# The local demo model: one example, bounded strings, and max_tokens above the bound.
LOCAL_DEMO_LIMITS = OutputLimits(max_chars=100, max_items=8)
LOCAL_DEMO_MAX_TOKENS = 1024
LOCAL_DEMO_EXAMPLES_PER_PROMPT = 1

GATE_STAGES = (ReviewStage.SCENARIO, ReviewStage.NOTE, ReviewStage.DIALOGUE)
# What each stage starts with, and the status the case is in while it runs.
STAGE_FIRST_AGENT: dict[str, str] = {
    ReviewStage.SCENARIO: AgentName.SCENARIO_PROVIDER,
    ReviewStage.NOTE: AgentName.NOTE_WRITER,
    ReviewStage.DIALOGUE: AgentName.DIALOGUE_GENERATOR,
}
STAGE_GENERATING_STATUS: dict[str, str] = {
    ReviewStage.SCENARIO: CaseStatus.SCENARIO_GENERATING,
    ReviewStage.NOTE: CaseStatus.NOTE_GENERATING,
    ReviewStage.DIALOGUE: CaseStatus.DIALOGUE_GENERATING,
}
AGENT_GENERATING_STATUS: dict[str, str] = {
    AgentName.SCENARIO_PROVIDER: CaseStatus.SCENARIO_GENERATING,
    AgentName.SCENARIO_JUDGE: CaseStatus.SCENARIO_GENERATING,
    AgentName.NOTE_WRITER: CaseStatus.NOTE_GENERATING,
    AgentName.NOTE_POLISHER: CaseStatus.NOTE_GENERATING,
    AgentName.DIALOGUE_GENERATOR: CaseStatus.DIALOGUE_GENERATING,
    AgentName.DIALOGUE_POLISHER: CaseStatus.DIALOGUE_GENERATING,
}


JUDGE_LLM = "llm"
JUDGE_SIMILARITY_ONLY = "similarity"


class PipelineError(ValueError):
    """A pipeline request that the case's state does not allow."""


class RegenerationNotAllowed(PipelineError):
    pass


class AdvanceNotAllowed(PipelineError):
    pass


# --- Configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineConfig:
    """A batch's settings (GenerationBatch.config) with the defaults filled in."""

    temperatures: dict[str, float]
    max_tokens: dict[str, int]
    gates: frozenset[str]
    max_scenario_revisions: int
    similar_k: int
    near_duplicate_threshold: float
    examples_per_prompt: int
    fixed_role: str = ""
    limits: OutputLimits | None = None
    # "llm": the judge model decides; "similarity": only the near-duplicate check runs
    # (the default on the local demo model, which cannot judge medical content).
    judge_mode: str = JUDGE_LLM
    extra: dict[str, Any] = field(default_factory=dict)


def pipeline_config(*, batch: GenerationBatch) -> PipelineConfig:
    raw = batch.config or {}
    demo = bool(batch.endpoint and batch.endpoint.is_local_demo)
    limits = raw.get("output_limits")
    default_tokens: dict[str, int] = dict.fromkeys(AGENT_MODULES, LOCAL_DEMO_MAX_TOKENS) if demo else {}
    return PipelineConfig(
        temperatures={**DEFAULT_TEMPERATURES, **{k: float(v) for k, v in (raw.get("temperatures") or {}).items()}},
        max_tokens={**default_tokens, **{k: int(v) for k, v in (raw.get("max_tokens") or {}).items()}},
        gates=frozenset(raw.get("gates") or ()) & frozenset(GATE_STAGES),
        max_scenario_revisions=int(raw.get("max_scenario_revisions", DEFAULT_MAX_SCENARIO_REVISIONS)),
        similar_k=int(raw.get("similar_k", similarity.DEFAULT_K)),
        near_duplicate_threshold=float(
            raw.get("near_duplicate_threshold", similarity.DEFAULT_NEAR_DUPLICATE_THRESHOLD)
        ),
        examples_per_prompt=int(
            raw.get("examples_per_prompt", LOCAL_DEMO_EXAMPLES_PER_PROMPT if demo else DEFAULT_EXAMPLES_PER_PROMPT)
        ),
        fixed_role=str(raw.get("role") or ""),
        limits=OutputLimits(**limits) if limits else (LOCAL_DEMO_LIMITS if demo else None),
        judge_mode=str(raw.get("judge_mode") or (JUDGE_SIMILARITY_ONLY if demo else JUDGE_LLM)),
    )


# --- Steps: create, enqueue, claim, finish --------------------------------------------


def _enqueue(step_id: int) -> None:
    from generation.tasks import run_pipeline_step  # the task module imports this one

    run_pipeline_step.delay(step_id)


def step_create(*, case: Case, agent: str, feedback: str = "", requested_by: User | None = None) -> PipelineStep:
    """The next attempt of `agent` for `case`, enqueued once the transaction commits."""
    with transaction.atomic():
        Case.objects.select_for_update().filter(pk=case.pk).first()
        last = case.steps.filter(agent=agent).aggregate(n=Max("attempt"))["n"] or 0
        step = PipelineStep.objects.create(
            case=case, agent=agent, attempt=last + 1, feedback=feedback, requested_by=requested_by
        )
        transaction.on_commit(lambda: _enqueue(step.pk))
    return step


def _step_claim(*, step_id: int, task_id: str) -> PipelineStep | None:
    """The step, now RUNNING for this task; None when there is nothing to do.

    A RUNNING step is taken over only by a redelivery of the same task message (its
    first run died with its worker); a duplicate message for it is dropped.
    """
    now = timezone.now()
    claimed = PipelineStep.objects.filter(pk=step_id, status=StepStatus.PENDING).update(
        status=StepStatus.RUNNING, started_at=now, updated_at=now, task_id=task_id
    )
    if not claimed:
        redelivered = bool(task_id) and PipelineStep.objects.filter(
            pk=step_id, status=StepStatus.RUNNING, task_id=task_id
        ).update(started_at=now, updated_at=now)
        if not redelivered:
            return None
    return PipelineStep.objects.select_related(
        "case__batch__endpoint", "case__code", "case__role", "case__survey_snapshot", "requested_by"
    ).get(pk=step_id)


def _step_succeed(*, step: PipelineStep, result: dict[str, Any], version: ArtefactVersion | None = None) -> None:
    step.status = StepStatus.SUCCEEDED
    step.result = result
    step.output_version = version
    step.finished_at = timezone.now()
    step.error = ""
    step.save(update_fields=["status", "result", "output_version", "finished_at", "error", "updated_at"])


def _step_fail(*, step: PipelineStep, message: str, fail_case: bool = True) -> None:
    with transaction.atomic():
        step.status = StepStatus.FAILED
        step.error = message
        step.finished_at = timezone.now()
        step.save(update_fields=["status", "error", "finished_at", "updated_at"])
        case = Case.objects.select_for_update().get(pk=step.case_id)
        if fail_case and case.can_transition_to(CaseStatus.FAILED):
            case_transition(case=case, to=CaseStatus.FAILED, error=f"{step.get_agent_display()}: {message}")
        batch_progress_refresh(batch_id=case.batch_id)


# --- Running one step -------------------------------------------------------------------


@dataclass
class StepContext:
    step: PipelineStep
    case: Case
    config: PipelineConfig

    @property
    def regenerating(self) -> bool:
        return self.step.requested_by_id is not None


def pipeline_step_run(*, step_id: int, task_id: str = "") -> None:
    """Run one agent step; a step that is already done (or taken) is left alone."""
    step = _step_claim(step_id=step_id, task_id=task_id)
    if step is None:
        return
    case = step.case
    expected = AGENT_GENERATING_STATUS[step.agent]
    if case.status != expected:
        _step_fail(step=step, message=f"the case is {case.get_status_display().lower()} now", fail_case=False)
        return
    context = StepContext(step=step, case=case, config=pipeline_config(batch=case.batch))
    try:
        STEP_RUNNERS[step.agent](context)
    except LlmCallError as error:
        _step_fail(step=step, message=str(error))
    except (InvalidTransition, dialogue_generator.EmptyDialogue) as error:
        _step_fail(step=step, message=str(error), fail_case=not isinstance(error, InvalidTransition))
    except Exception as error:
        logger.exception("Pipeline step %s failed", step)
        _step_fail(step=step, message=f"internal error: {type(error).__name__}: {error}")


def _call(context: StepContext, *, messages: list[Message], schema: type[BaseModel]) -> LlmResult[BaseModel]:
    step, case, config = context.step, context.case, context.config
    module = AGENT_MODULES[AgentName(step.agent)]
    bounded = bounded_schema(schema, config.limits) if config.limits else schema
    endpoint = _endpoint(case.batch)
    return structured_completion(
        endpoint=endpoint,
        messages=messages_without_system(messages) if endpoint.is_local_demo else messages,
        schema=bounded,
        agent=AgentName(step.agent),
        prompt_version=module.PROMPT_VERSION,
        temperature=config.temperatures[step.agent],
        model=case.batch.model or None,
        max_tokens=config.max_tokens.get(step.agent),
        case=case,
        step=step,
    )


def _endpoint(batch: GenerationBatch) -> LlmEndpoint:
    if batch.endpoint is not None:
        return batch.endpoint
    endpoint = LlmEndpoint.objects.filter(is_default=True, is_active=True).first()
    if endpoint is None:
        raise PipelineError("the batch has no LLM endpoint and there is no default endpoint")
    return endpoint


def _examples(context: StepContext) -> list[WorkedExample]:
    return examples_for_code(code=context.case.code, limit=context.config.examples_per_prompt)


def _raw_source(context: StepContext) -> str:
    return VersionSource.REGENERATED if context.regenerating else VersionSource.LLM_RAW


def _variable_names() -> dict[str, str]:
    return dict(QualityVariable.objects.values_list("key", "name"))


def _require(case: Case, kind: str) -> ArtefactVersion:
    version = latest_version(case=case, kind=kind)
    if version is None:
        raise PipelineError(f"case {case.pk} has no {kind} yet")
    return version


def _run_scenario_provider(context: StepContext) -> None:
    step, case = context.step, context.case
    variables = ranked_variables(snapshot=case.survey_snapshot)
    # The schema lists the variables in the survey's table order, so it stays the same
    # between survey versions; the prompt carries the ranking.
    keys = list(QualityVariable.objects.filter(is_active=True).values_list("key", flat=True))
    roles = list(PhysicianRole.objects.filter(is_active=True))
    previous = latest_version(case=case, kind=ArtefactKind.SCENARIO) if step.feedback else None
    messages = scenario_provider.build_messages(
        code=case.code,
        roles=roles,
        variables=variables,
        survey=case.survey_snapshot,
        examples=_examples(context),
        fixed_role=context.config.fixed_role,
        previous=previous.content if previous else None,
        feedback=step.feedback,
    )
    result = _call(context, messages=messages, schema=scenario_provider.output_schema(tuple(keys)))
    output: Any = result.output
    role = scenario_provider.role_resolve(
        name=context.config.fixed_role or output.role, roles=roles
    ) or scenario_provider.fallback_role(roles=roles)
    content = scenario_provider.scenario_content(output=output, role=role, variable_keys=keys)
    with transaction.atomic():
        version = artefact_version_create(
            case=case,
            kind=ArtefactKind.SCENARIO,
            content=content,
            source=_raw_source(context),
            parent=previous,
            agent_call=result.call,
        )
        if role is not None:
            Case.objects.filter(pk=case.pk).update(role=role)
        _step_succeed(
            step=step,
            result={"planning": output.planning, "role_returned": output.role, "role": role.name if role else None},
            version=version,
        )
        step_create(case=case, agent=AgentName.SCENARIO_JUDGE, requested_by=step.requested_by)


def _run_scenario_judge(context: StepContext) -> None:
    step, case, config = context.step, context.case, context.config
    scenario = _require(case, ArtefactKind.SCENARIO)
    candidates = similarity.approved_scenarios(code=case.code, exclude_case=case)
    similar = similarity.most_similar(content=scenario.content, candidates=candidates, k=config.similar_k)
    compared = [{"case_id": item.case_id, "similarity": round(item.similarity, 4)} for item in similar]
    if similar and similar[0].similarity >= config.near_duplicate_threshold:
        closest = similar[0]
        verdict: dict[str, Any] = {
            "approved": False,
            "near_duplicate": True,
            "similarity": round(closest.similarity, 4),
            "feedback": (
                f"The scenario is a near duplicate (TF-IDF cosine {closest.similarity:.2f}) of the approved "
                f"scenario of case {closest.case_id}. Change at least 4 of the variables: a different patient, "
                "setting, history and outcome."
            ),
        }
    elif config.judge_mode == JUDGE_SIMILARITY_ONLY:
        verdict = {
            "approved": True,
            "near_duplicate": False,
            "judge_mode": JUDGE_SIMILARITY_ONLY,
            "feedback": "",
            "similarity": round(similar[0].similarity, 4) if similar else 0.0,
        }
    else:
        names = _variable_names()
        messages = scenario_judge.build_messages(
            code=case.code,
            scenario=scenario.content,
            similar=[
                {"similarity": item.similarity, "text": rendering.scenario_text(item.content, variable_names=names)}
                for item in similar
            ],
            variable_names=names,
        )
        output: Any = _call(context, messages=messages, schema=scenario_judge.ScenarioJudgeOutput).output
        approved = scenario_judge.verdict_approved(output)
        verdict = {
            **output.model_dump(),
            "approved": approved,
            "model_approved": output.approved,
            "feedback": "" if approved else scenario_judge.rejection_feedback(output),
        }
    verdict.update({"scenario_version_id": scenario.pk, "compared_with": compared})
    with transaction.atomic():
        _step_succeed(step=step, result=verdict)
        if verdict["approved"]:
            _scenario_approved(context)
        else:
            _scenario_rejected(context, feedback=verdict["feedback"])


def _scenario_approved(context: StepContext) -> None:
    case, step = context.case, context.step
    if ReviewStage.SCENARIO in context.config.gates:
        case_transition(case=case, to=CaseStatus.SCENARIO_REVIEW, expected=CaseStatus.SCENARIO_GENERATING)
        return
    case_transition(case=case, to=CaseStatus.NOTE_GENERATING, expected=CaseStatus.SCENARIO_GENERATING)
    step_create(case=case, agent=AgentName.NOTE_WRITER, requested_by=step.requested_by)


def _scenario_rejected(context: StepContext, *, feedback: str) -> None:
    case = context.case
    Case.objects.filter(pk=case.pk).update(scenario_revisions=F("scenario_revisions") + 1)
    case.refresh_from_db(fields=["scenario_revisions"])
    if case.scenario_revisions > context.config.max_scenario_revisions:
        case_transition(
            case=case,
            to=CaseStatus.NEEDS_ATTENTION,
            expected=CaseStatus.SCENARIO_GENERATING,
            error=f"The judge rejected the scenario {case.scenario_revisions} times "
            f"(cap: {context.config.max_scenario_revisions} revisions). Last feedback: {feedback}",
        )
        batch_progress_refresh(batch_id=case.batch_id)
        return
    step_create(case=case, agent=AgentName.SCENARIO_PROVIDER, feedback=feedback, requested_by=context.step.requested_by)


def _run_note_writer(context: StepContext) -> None:
    step, case = context.step, context.case
    scenario = _require(case, ArtefactKind.SCENARIO)
    previous = latest_version(case=case, kind=ArtefactKind.NOTE) if step.feedback else None
    messages = note_writer.build_messages(
        code=case.code,
        role=case.role.name if case.role else str(scenario.content.get("role", "")),
        scenario=scenario.content,
        variables=ranked_variables(snapshot=case.survey_snapshot),
        survey=case.survey_snapshot,
        examples=_examples(context),
        variable_names=_variable_names(),
        previous=previous.content if previous else None,
        feedback=step.feedback,
    )
    result = _call(context, messages=messages, schema=note_writer.NoteWriterOutput)
    output: Any = result.output
    with transaction.atomic():
        version = artefact_version_create(
            case=case,
            kind=ArtefactKind.NOTE,
            content=note_writer.note_content(output),
            source=_raw_source(context),
            parent=previous,
            agent_call=result.call,
        )
        _step_succeed(
            step=step, result={"planning": output.planning, "scenario_version_id": scenario.pk}, version=version
        )
        step_create(case=case, agent=AgentName.NOTE_POLISHER, requested_by=step.requested_by)


def _run_note_polisher(context: StepContext) -> None:
    step, case = context.step, context.case
    raw_note = _require(case, ArtefactKind.NOTE)
    result = _call(
        context, messages=note_polisher.build_messages(note=raw_note.content), schema=note_polisher.NotePolisherOutput
    )
    output: Any = result.output
    with transaction.atomic():
        version = artefact_version_create(
            case=case,
            kind=ArtefactKind.NOTE,
            content=note_writer.note_content(output),
            source=VersionSource.LLM_POLISHED,
            parent=raw_note,
            agent_call=result.call,
        )
        _step_succeed(step=step, result={"changes": output.changes, "input_version_id": raw_note.pk}, version=version)
        if ReviewStage.NOTE in context.config.gates:
            case_transition(case=case, to=CaseStatus.NOTE_REVIEW, expected=CaseStatus.NOTE_GENERATING)
            return
        case_transition(case=case, to=CaseStatus.DIALOGUE_GENERATING, expected=CaseStatus.NOTE_GENERATING)
        step_create(case=case, agent=AgentName.DIALOGUE_GENERATOR, requested_by=step.requested_by)


def _run_dialogue_generator(context: StepContext) -> None:
    step, case = context.step, context.case
    # The latest note is the polished one (or a clinician's edit of it): the dialogue
    # must speak the facts of the note that is released with it.
    note = _require(case, ArtefactKind.NOTE)
    previous = latest_version(case=case, kind=ArtefactKind.DIALOGUE) if step.feedback else None
    messages = dialogue_generator.build_messages(
        role=case.role.name if case.role else "",
        polished_note=note.content,
        examples=_examples(context),
        previous=previous.content if previous else None,
        feedback=step.feedback,
    )
    result = _call(context, messages=messages, schema=dialogue_generator.DialogueGeneratorOutput)
    output: Any = result.output
    content = dialogue_generator.dialogue_content(output.turns)
    with transaction.atomic():
        version = artefact_version_create(
            case=case,
            kind=ArtefactKind.DIALOGUE,
            content=content,
            source=_raw_source(context),
            parent=previous,
            agent_call=result.call,
        )
        _step_succeed(step=step, result={"planning": output.planning, "note_version_id": note.pk}, version=version)
        step_create(case=case, agent=AgentName.DIALOGUE_POLISHER, requested_by=step.requested_by)


def _run_dialogue_polisher(context: StepContext) -> None:
    step, case = context.step, context.case
    note = _require(case, ArtefactKind.NOTE)
    raw_dialogue = _require(case, ArtefactKind.DIALOGUE)
    messages = dialogue_polisher.build_messages(polished_note=note.content, dialogue=raw_dialogue.content)
    result = _call(context, messages=messages, schema=dialogue_polisher.DialoguePolisherOutput)
    output: Any = result.output
    content = dialogue_generator.dialogue_content(output.turns)
    with transaction.atomic():
        version = artefact_version_create(
            case=case,
            kind=ArtefactKind.DIALOGUE,
            content=content,
            source=VersionSource.LLM_POLISHED,
            parent=raw_dialogue,
            agent_call=result.call,
        )
        _step_succeed(
            step=step,
            result={
                "missing_facts": output.missing_facts,
                "note_version_id": note.pk,
                "input_version_id": raw_dialogue.pk,
            },
            version=version,
        )
        to = CaseStatus.DIALOGUE_REVIEW if ReviewStage.DIALOGUE in context.config.gates else CaseStatus.PAIR_REVIEW
        case_transition(case=case, to=to, expected=CaseStatus.DIALOGUE_GENERATING)
        batch_progress_refresh(batch_id=case.batch_id)


STEP_RUNNERS: dict[str, Callable[[StepContext], None]] = {
    AgentName.SCENARIO_PROVIDER: _run_scenario_provider,
    AgentName.SCENARIO_JUDGE: _run_scenario_judge,
    AgentName.NOTE_WRITER: _run_note_writer,
    AgentName.NOTE_POLISHER: _run_note_polisher,
    AgentName.DIALOGUE_GENERATOR: _run_dialogue_generator,
    AgentName.DIALOGUE_POLISHER: _run_dialogue_polisher,
}


# --- Starting, advancing and regenerating cases -----------------------------------------


def case_start(*, case: Case) -> PipelineStep:
    """PLANNED -> generating the scenario, with the survey snapshot the case will use."""
    with transaction.atomic():
        case_transition(case=case, to=CaseStatus.SCENARIO_GENERATING, expected=CaseStatus.PLANNED)
        snapshot = selectors.latest_survey_snapshot()
        Case.objects.filter(pk=case.pk).update(survey_snapshot=snapshot)
        case.survey_snapshot = snapshot
        return step_create(case=case, agent=AgentName.SCENARIO_PROVIDER)


# The statuses from which a reviewer may send each stage back for regeneration.
REGENERATE_FROM: dict[str, frozenset[str]] = {
    ReviewStage.SCENARIO: frozenset(
        {
            CaseStatus.SCENARIO_REVIEW,
            CaseStatus.PAIR_REVIEW,
            CaseStatus.REJECTED,
            CaseStatus.NEEDS_ATTENTION,
            CaseStatus.FAILED,
        }
    ),
    ReviewStage.NOTE: frozenset(
        {
            CaseStatus.NOTE_REVIEW,
            CaseStatus.DIALOGUE_REVIEW,
            CaseStatus.PAIR_REVIEW,
            CaseStatus.ADJUDICATION,
            CaseStatus.FAILED,
        }
    ),
    ReviewStage.DIALOGUE: frozenset(
        {CaseStatus.DIALOGUE_REVIEW, CaseStatus.PAIR_REVIEW, CaseStatus.ADJUDICATION, CaseStatus.FAILED}
    ),
}
# What must exist before a stage can be regenerated.
STAGE_INPUT_KIND: dict[str, str] = {ReviewStage.NOTE: ArtefactKind.SCENARIO, ReviewStage.DIALOGUE: ArtefactKind.NOTE}


def case_regenerate(*, case: Case, stage: str, comment: str, requested_by: User | None) -> PipelineStep:
    """Re-run the first agent of `stage` with the reviewer's comment in its prompt.

    The result is stored as a new version with source "regenerated"; the stages after it
    follow (a regenerated note gets a regenerated dialogue, since the dialogue is written
    from the polished note). Raises RegenerationNotAllowed when the case's status or
    content does not allow it.
    """
    if stage not in STAGE_FIRST_AGENT:
        raise RegenerationNotAllowed(f"Unknown stage {stage!r}; expected one of: {', '.join(STAGE_FIRST_AGENT)}.")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status not in REGENERATE_FROM[stage]:
            raise RegenerationNotAllowed(
                f"Case {case.pk} is {case.get_status_display().lower()}; its {stage} cannot be regenerated now."
            )
        needed = STAGE_INPUT_KIND.get(stage)
        if needed and latest_version(case=case, kind=needed) is None:
            raise RegenerationNotAllowed(f"Case {case.pk} has no {needed} yet, so its {stage} cannot be regenerated.")
        if stage == ReviewStage.SCENARIO:
            # A reviewer's request starts a fresh revision budget for the judge loop.
            Case.objects.filter(pk=case.pk).update(scenario_revisions=0)
        case_transition(case=case, to=STAGE_GENERATING_STATUS[stage])
        step = step_create(
            case=case, agent=STAGE_FIRST_AGENT[stage], feedback=comment.strip(), requested_by=requested_by
        )
        batch_progress_refresh(batch_id=case.batch_id)
    return step


class RetryNotAllowed(PipelineError):
    pass


def case_retry(*, case: Case) -> PipelineStep:
    """Run a failed case's failed step again (a new attempt of the same agent, with the
    same feedback), e.g. after a provider outage outlasted the retry budget."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status != CaseStatus.FAILED:
            raise RetryNotAllowed(f"Case {case.pk} is {case.get_status_display().lower()}, not failed.")
        failed = case.steps.filter(status=StepStatus.FAILED).order_by("-created_at", "-id").first()
        if failed is None:
            raise RetryNotAllowed(f"Case {case.pk} has no failed step to run again.")
        case_transition(case=case, to=AGENT_GENERATING_STATUS[failed.agent])
        step = step_create(case=case, agent=failed.agent, feedback=failed.feedback, requested_by=failed.requested_by)
        batch_progress_refresh(batch_id=case.batch_id)
    return step


# A gated stage, once approved, continues with this stage.
NEXT_STAGE_AFTER_REVIEW: dict[str, str] = {
    CaseStatus.SCENARIO_REVIEW: ReviewStage.NOTE,
    CaseStatus.NOTE_REVIEW: ReviewStage.DIALOGUE,
}


def case_advance_after_review(*, case: Case) -> None:
    """A clinician approved a gated stage: run the next agent, or (after the dialogue
    gate) send the pair to final review."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status == CaseStatus.DIALOGUE_REVIEW:
            case_transition(case=case, to=CaseStatus.PAIR_REVIEW)
            batch_progress_refresh(batch_id=case.batch_id)
            return
        stage = NEXT_STAGE_AFTER_REVIEW.get(case.status)
        if stage is None:
            raise AdvanceNotAllowed(
                f"Case {case.pk} is {case.get_status_display().lower()}, not waiting at a review gate."
            )
        case_transition(case=case, to=STAGE_GENERATING_STATUS[stage])
        step_create(case=case, agent=STAGE_FIRST_AGENT[stage])
        batch_progress_refresh(batch_id=case.batch_id)


# --- Batch progress -----------------------------------------------------------------------


def batch_progress_refresh(*, batch_id: int) -> None:
    """Recount a batch's produced / failed / approved cases and finish it when no case is
    still planned or generating."""
    cases = Case.objects.filter(batch_id=batch_id)
    by_status = selectors.case_status_counts(cases)
    updates: dict[str, Any] = {
        "planned_count": sum(by_status.values()),
        "produced_count": selectors.produced_case_count(cases),
        "failed_count": sum(by_status.get(status, 0) for status in FAILED_STATUSES),
        "approved_count": by_status.get(CaseStatus.APPROVED, 0),
        "updated_at": timezone.now(),
    }
    GenerationBatch.objects.filter(pk=batch_id).update(**updates)
    in_flight = any(by_status.get(status, 0) for status in IN_FLIGHT_STATUSES)
    active = GenerationBatch.objects.filter(
        pk=batch_id, status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING, BatchStatus.COMPLETED]
    )
    if in_flight:
        active.exclude(status=BatchStatus.RUNNING).update(status=BatchStatus.RUNNING, finished_at=None)
    else:
        active.exclude(status=BatchStatus.COMPLETED).update(status=BatchStatus.COMPLETED, finished_at=timezone.now())
