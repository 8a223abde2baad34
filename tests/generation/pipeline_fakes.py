"""Canned model answers for pipeline tests, replayed through the real openai client.

`agent_answerer()` answers each chat request by which agent sent it (read from the
system prompt), so a test does not depend on the order of calls. The answers' shapes live in
tests/fake_llm_server.py, which the tests that run real worker processes serve over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from generation.models import (
    BatchStatus,
    CaseStatus,
    GenerationBatch,
    PipelineStep,
    QualityVariable,
    StepStatus,
)
from generation.services.pipeline import pipeline_step_run
from tests import fake_llm_server
from tests.factories import CaseFactory, GenerationBatchFactory, IcdCodeFactory, LlmEndpointFactory, LlmModelFactory
from tests.fake_llm_server import agent_of_messages
from tests.fake_llm_server import dialogue_output as dialogue_output  # re-exported for the tests
from tests.fake_llm_server import judge_output as judge_output
from tests.fake_llm_server import note_output as note_output
from tests.llm_replay import SentRequest, chat_response, models_response


def agent_of(request: SentRequest) -> str:
    try:
        return agent_of_messages(request.messages)
    except ValueError as error:
        raise AssertionError(str(error)) from error


def scenario_output(*, theme: str = "metformin", role: str = "**Family Medicine Physician**") -> dict[str, Any]:
    keys = list(QualityVariable.objects.values_list("key", flat=True))
    return fake_llm_server.scenario_output(variable_keys=keys, theme=theme, role=role)


def agent_answerer(**overrides: Any) -> Callable[[SentRequest], httpx.Response]:
    """Answer by agent; an override is a dict, or a list of dicts consumed one per call."""
    queues = {agent: list(value) if isinstance(value, list) else value for agent, value in overrides.items()}

    def answer(request: SentRequest) -> httpx.Response:
        if request.path.endswith("/models"):
            return models_response(["test-model"])
        agent = agent_of(request)
        override = queues.get(agent)
        if isinstance(override, list):
            body = override.pop(0) if len(override) > 1 else override[0]
        elif override is not None:
            body = override
        else:
            keys = list(QualityVariable.objects.values_list("key", flat=True))
            body = fake_llm_server.default_output(agent, variable_keys=keys)
        return chat_response(body, usage=(200, 80))

    return answer


def answers(count: int, **overrides: Any) -> list[Callable[[SentRequest], httpx.Response]]:
    answerer = agent_answerer(**overrides)
    return [answerer] * count


def make_endpoint(**fields: Any) -> Any:
    endpoint = LlmEndpointFactory(default_model="test-model", **fields)
    LlmModelFactory(endpoint=endpoint, name="test-model")
    return endpoint


def make_batch(**config: Any) -> GenerationBatch:
    endpoint = make_endpoint()
    return GenerationBatchFactory(endpoint=endpoint, model="test-model", config=config, status=BatchStatus.RUNNING)


def make_case(*, batch: GenerationBatch | None = None, code: Any = None, **config: Any) -> Any:
    batch = batch or make_batch(**config)
    code = code or IcdCodeFactory(
        code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4"
    )
    return CaseFactory(batch=batch, code=code, role=None, status=CaseStatus.PLANNED)


def run_pending_steps(*, limit: int = 60) -> int:
    """Run the queued steps in order, as the worker would (tests do not commit, so
    nothing reaches the broker)."""
    ran = 0
    while ran < limit:
        step = PipelineStep.objects.filter(status=StepStatus.PENDING).order_by("id").first()
        if step is None:
            return ran
        pipeline_step_run(step_id=step.pk, task_id=f"test-{step.pk}")
        ran += 1
    raise AssertionError("the pipeline did not settle")
