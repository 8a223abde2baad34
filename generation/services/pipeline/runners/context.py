"""What every agent runner shares: the step's context, the model call, and the one way a
step ends with an output (store it, mark the step done, start what follows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from pydantic import BaseModel

from generation import selectors
from generation.agents.limits import bounded_schema
from generation.agents.prompting import Message, messages_without_system
from generation.examples import WorkedExample, examples_for_code
from generation.llm import LlmResult, completion_request, structured_completion
from generation.models import (
    AGENT_STAGE,
    NEXT_AGENT,
    AgentCall,
    AgentName,
    ArtefactVersion,
    Case,
    GenerationBatch,
    LlmEndpoint,
    PipelineStep,
    VersionSource,
)
from generation.services.cases import artefact_version_draft, artefact_version_write
from generation.services.examples import in_context_examples_record
from generation.services.pipeline.config import AGENT_MODULES, PipelineConfig, batch_endpoint
from generation.services.pipeline.control import stop_when_cancelled
from generation.services.pipeline.errors import PipelineError
from generation.services.pipeline.leases import time_left_check
from generation.services.pipeline.lifecycle import stage_done
from generation.services.pipeline.provider_batches import (
    AwaitingProviderBatch,
    received_batch_reply,
    runs_in_provider_batch,
)
from generation.services.pipeline.steps import step_create, step_succeed


@dataclass
class StepContext:
    step: PipelineStep
    case: Case
    config: PipelineConfig
    # time.monotonic() past which no LLM attempt starts (the step's time limit; see leases).
    deadline: float | None = None
    _versions: dict[str, ArtefactVersion] | None = field(default=None, repr=False)

    @property
    def versions(self) -> dict[str, ArtefactVersion]:
        """{kind: current version} of the case as the step found it, read once: the agent's
        input, and what its output's checks read beside it (the write notices when one of
        them changed meanwhile, see artefact_version_write)."""
        if self._versions is None:
            self._versions = selectors.current_versions(case=self.case)
        return self._versions

    @property
    def regenerating(self) -> bool:
        """The step belongs to a chain a reviewer asked for."""
        return self.step.requested_by_id is not None

    @property
    def fixed_role(self) -> str:
        """The role the scenario must be written for: the batch's, or one an admin chose for
        this case; empty when the provider chooses."""
        if self.config.fixed_role:
            return self.config.fixed_role
        return self.case.role.name if self.case.role_fixed and self.case.role else ""

    @property
    def raw_source(self) -> str:
        return VersionSource.REGENERATED if self.regenerating else VersionSource.LLM_RAW

    @property
    def polished_source(self) -> str:
        return VersionSource.REGENERATED_POLISHED if self.regenerating else VersionSource.LLM_POLISHED


@dataclass(frozen=True)
class AgentOutput:
    """The next version of an artefact, as the step's agent wrote it."""

    kind: str
    content: dict[str, Any]
    source: str
    call: AgentCall | None
    parent: ArtefactVersion | None = None


def step_complete(context: StepContext, *, result: dict[str, Any], output: AgentOutput | None = None) -> None:
    """End a step in one transaction: store its output as the artefact's next version,
    mark the step done and start what follows (the stage's next agent; after its last
    agent, the stage's gate or the next stage)."""
    step, case = context.step, context.case
    # Rendered and checked before the transaction: no lock is held while the checks run.
    draft = (
        artefact_version_draft(case=case, kind=output.kind, content=output.content, current=context.versions)
        if output
        else None
    )
    # No savepoint when a runner's own transaction holds this one (the scenario's role): it
    # commits or fails whole.
    with transaction.atomic(savepoint=False):
        version = None
        if output is not None and draft is not None:
            version = artefact_version_write(
                case=case, draft=draft, source=output.source, parent=output.parent, agent_call=output.call
            )
        step_succeed(step=step, result=result, version=version)
        next_agent = NEXT_AGENT.get(step.agent)
        if next_agent is not None:
            step_create(case=case, agent=next_agent, requested_by=step.requested_by)
            return
        stage = AGENT_STAGE[step.agent]
        stage_done(case=case, stage=stage, gated=stage in context.config.gates, requested_by=step.requested_by)


def endpoint_for(batch: GenerationBatch) -> LlmEndpoint:
    endpoint = batch_endpoint(batch)
    if endpoint is None:
        raise PipelineError("the batch has no LLM endpoint and there is no default endpoint")
    return endpoint


def _attempt_checks(context: StepContext, *, endpoint: LlmEndpoint) -> Callable[[], None]:
    """What must hold before each LLM attempt: the batch is not cancelled, and the attempt
    can end within the step's time limit."""
    checks = [stop_when_cancelled(batch_id=context.case.batch_id)]
    if context.deadline is not None:
        checks.append(time_left_check(deadline=context.deadline, attempt_seconds=endpoint.timeout_seconds))

    def check_all() -> None:
        for check in checks:
            check()

    return check_all


def agent_request(
    *, endpoint: LlmEndpoint, config: PipelineConfig, messages: list[Message], schema: type[BaseModel]
) -> tuple[list[Message], type[BaseModel]]:
    """The messages and schema an agent sends to `endpoint` under the batch's settings
    (the cost estimate renders prompts through this too)."""
    bounded = bounded_schema(schema, config.limits) if config.limits else schema
    return (messages_without_system(messages) if endpoint.is_local_demo else messages), bounded


def agent_call(
    context: StepContext,
    *,
    messages: list[Message],
    schema: type[BaseModel],
    examples: Sequence[WorkedExample] = (),
) -> LlmResult[BaseModel]:
    """The agent's validated output; the approved cases among `examples` (the worked examples
    in `messages`) are recorded against the call that succeeded. In provider-batch mode the
    first time round, the request is stored for the next provider batch instead
    (AwaitingProviderBatch); the run that follows the batch's reply reads it here, through
    the same validation, repair and record."""
    step, case, config = context.step, context.case, context.config
    module = AGENT_MODULES[AgentName(step.agent)]
    endpoint = endpoint_for(case.batch)
    sent, bounded = agent_request(endpoint=endpoint, config=config, messages=messages, schema=schema)
    temperature, max_tokens = config.temperatures[step.agent], config.max_tokens.get(step.agent)
    batch_reply = received_batch_reply(step=step)
    if batch_reply is None and runs_in_provider_batch(step=step, config=config):
        raise AwaitingProviderBatch(
            completion_request(
                endpoint=endpoint,
                messages=sent,
                schema=bounded,
                temperature=temperature,
                model=case.batch.model or None,
                max_tokens=max_tokens,
            )
        )
    result = structured_completion(
        endpoint=endpoint,
        messages=sent,
        schema=bounded,
        agent=AgentName(step.agent),
        prompt_version=module.PROMPT_VERSION,
        temperature=temperature,
        model=case.batch.model or None,
        max_tokens=max_tokens,
        case=case,
        step=step,
        before_attempt=_attempt_checks(context, endpoint=endpoint),
        batch_reply=batch_reply,
    )
    in_context_examples_record(call=result.call, examples=examples)
    return result


def worked_examples(context: StepContext) -> list[WorkedExample]:
    """The step's worked examples. Seeded by the case, so the agents of one case share their
    examples (a case is linked to at most `examples_per_prompt` examples, which keeps the
    groups that splits must keep together small) and a rerun picks the same ones."""
    case = context.case
    return examples_for_code(
        code=case.assigned_code(),
        limit=context.config.examples_per_prompt,
        seed=f"case:{case.pk}",
        for_demo_endpoint=endpoint_for(case.batch).is_local_demo,
        exclude_case_id=case.pk,
    )


def required_version(context: StepContext, kind: str) -> ArtefactVersion:
    version = context.versions.get(kind)
    if version is None:
        raise PipelineError(f"case {context.case.pk} has no {kind} yet")
    return version


def previous_version(context: StepContext, kind: str) -> ArtefactVersion | None:
    """The version a revision starts from: only a step with feedback revises."""
    return context.versions.get(kind) if context.step.feedback else None
