"""Running one agent step: claim it, check the case still waits for it, call the agent's
runner with the step's lease kept alive, and fail the step (and, unless the case moved on,
the case) on an error. Every way a run ends leaves the step SUCCEEDED or FAILED, or RUNNING
under a lease that runs out, for the recovery pass."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from generation.agents import dialogue_generator
from generation.llm import LlmCallError
from generation.models import AGENT_GENERATING_STATUS, AgentName, Case, InvalidTransition, PipelineStep
from generation.services.pipeline.budget import step_claim_within_budget
from generation.services.pipeline.config import pipeline_config
from generation.services.pipeline.control import holds_its_steps
from generation.services.pipeline.leases import STEP_MAX_RUNS, StepLeaseLost, lease_kept
from generation.services.pipeline.provider_batches import AwaitingProviderBatch, unread_batch_reply_record
from generation.services.pipeline.runners.context import StepContext
from generation.services.pipeline.runners.dialogue import run_dialogue_generator, run_dialogue_polisher
from generation.services.pipeline.runners.note import run_note_polisher, run_note_writer
from generation.services.pipeline.runners.scenario import run_scenario_judge, run_scenario_provider
from generation.services.pipeline.steps import step_batch_wait, step_claim_read, step_fail, step_for_run

logger = logging.getLogger(__name__)

STEP_RUNNERS: dict[str, Callable[[StepContext], None]] = {
    AgentName.SCENARIO_PROVIDER: run_scenario_provider,
    AgentName.SCENARIO_JUDGE: run_scenario_judge,
    AgentName.NOTE_WRITER: run_note_writer,
    AgentName.NOTE_POLISHER: run_note_polisher,
    AgentName.DIALOGUE_GENERATOR: run_dialogue_generator,
    AgentName.DIALOGUE_POLISHER: run_dialogue_polisher,
}


def pipeline_step_run(*, step_id: int, task_id: str = "") -> None:
    """Run one agent step; a message for a step that is done, or running under a live
    lease, is dropped."""
    step = step_for_run(step_id=step_id)
    if step is None or holds_its_steps(step.case.batch):
        return  # no new LLM call in a paused batch; batch_resume enqueues the step again
    if step.case.batch.budget is not None:
        step = step_claim_within_budget(step_id=step_id, task_id=task_id)
    elif not step_claim_read(step=step, task_id=task_id):
        step = None
    if step is None:
        return  # nothing to do, or the batch was paused at its budget cap
    step_run_claimed(step=step)


def step_run_claimed(*, step: PipelineStep) -> None:
    """Run a step this run has claimed, keeping its lease alive meanwhile."""
    case = step.case
    if step.claim_count > STEP_MAX_RUNS:
        step_fail(step=step, message=f"the step was interrupted {STEP_MAX_RUNS} times; it is not run again")
        return
    if case.status != AGENT_GENERATING_STATUS[step.agent]:
        step_fail(step=step, message=f"the case is {case.get_status_display().lower()} now", fail_case=False)
        return
    with lease_kept(step=step) as deadline:
        _runner_call(step=step, case=case, deadline=deadline)


def _runner_call(*, step: PipelineStep, case: Case, deadline: float) -> None:
    try:
        config = pipeline_config(batch=case.batch)
    except Exception as error:  # whatever is wrong in GenerationBatch.config
        step_fail(step=step, message=f"the batch's configuration is invalid: {type(error).__name__}: {error}")
        return
    try:
        STEP_RUNNERS[step.agent](StepContext(step=step, case=case, config=config, deadline=deadline))
    except AwaitingProviderBatch as waiting:
        _batch_wait(step=step, body=waiting.request.body())
        return
    except StepLeaseLost:
        logger.warning("Step %s was taken over by another run while this one worked; its output is dropped.", step)
    except LlmCallError as error:
        step_fail(step=step, message=str(error))
    except (InvalidTransition, dialogue_generator.EmptyDialogue) as error:
        # A case that moved on (cancelled, say) keeps its status; an empty dialogue fails it.
        step_fail(step=step, message=str(error), fail_case=not isinstance(error, InvalidTransition))
    except Exception as error:
        logger.exception("Pipeline step %s failed", step)
        step_fail(step=step, message=f"internal error: {type(error).__name__}: {error}")
    try:
        unread_batch_reply_record(step=step)
    except Exception:
        logger.exception("Could not record the unread provider-batch reply of step %s", step)


def _batch_wait(*, step: PipelineStep, body: dict[str, Any]) -> None:
    try:
        step_batch_wait(step=step, request_body=body)
    except StepLeaseLost:
        logger.warning("Step %s was taken over by another run; its request is left to that run.", step)
