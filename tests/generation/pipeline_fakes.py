"""Canned model answers for pipeline tests, replayed through the real openai client.

`agent_answerer()` answers each chat request by which agent sent it (read from the
system prompt), so a test does not depend on the order of calls."""

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
from tests.factories import CaseFactory, GenerationBatchFactory, IcdCodeFactory, LlmEndpointFactory, LlmModelFactory
from tests.llm_replay import RecordedRequest, chat_response, models_response

SYSTEM_MARKERS = {
    "scenario_provider": "You are the Scenario Provider",
    "scenario_judge": "You are the Scenario Judge",
    "note_writer": "You are the Note Writer",
    "note_polisher": "You are the Note Polisher",
    "dialogue_generator": "You are the Dialogue Generator",
    "dialogue_polisher": "You are the Dialogue Polisher",
}


def agent_of(request: RecordedRequest) -> str:
    # The local demo model gets its instructions in the first user turn.
    system = "\n".join(str(m.get("content") or "")[:200] for m in request.messages[:2])
    for agent, marker in SYSTEM_MARKERS.items():
        if marker in system:
            return agent
    raise AssertionError(f"no agent recognised in the system prompt: {system[:200]!r}")


def scenario_output(*, theme: str = "metformin", role: str = "**Family Medicine Physician**") -> dict[str, Any]:
    keys = QualityVariable.objects.values_list("key", flat=True)
    return {
        "planning": "A retired teacher with new diabetes; focus on cost barriers.",
        "role": role,
        "variables": {key: f"{theme} detail for {key.replace('_', ' ')}" for key in keys},
    }


def judge_output(*, approved: bool = True, reason: str = "Consistent with the code.") -> dict[str, Any]:
    verdict = {"reason": reason, "passed": approved}
    return {"medical_correctness": verdict, "plausibility": verdict, "diversity": verdict, "approved": approved}


def note_output(*, marker: str = "raw", lead: str = "planning") -> dict[str, Any]:
    return {
        lead: "Plan the note around the scenario." if lead == "planning" else "Moved HbA1c to objective.",
        "chief_complaint": "Thirst.",
        "history_of_present_illness": "Three months of thirst.",
        "review_of_systems": "No weight loss.",
        "subjective": f"Reports polyuria ({marker} note).",
        "objective": "HbA1c 8.1%.",
        "assessment": "Type 2 diabetes.",
        "plan": f"Metformin 500 mg twice daily ({marker} plan).",
    }


def dialogue_output(*, marker: str = "raw", lead: str = "planning") -> dict[str, Any]:
    turns = [
        {"speaker": "Doctor", "text": f"What brings you in? ({marker})"},
        {"speaker": "**Patient**", "text": "I'm thirsty all the time."},
    ]
    if lead == "planning":
        return {"planning": "Open with the complaint.", "turns": turns}
    return {"missing_facts": [], "turns": turns}


DEFAULT_OUTPUTS: dict[str, Callable[[], dict[str, Any]]] = {
    "scenario_provider": scenario_output,
    "scenario_judge": judge_output,
    "note_writer": note_output,
    "note_polisher": lambda: note_output(marker="polished", lead="changes"),
    "dialogue_generator": dialogue_output,
    "dialogue_polisher": lambda: dialogue_output(marker="polished", lead="missing_facts"),
}


def agent_answerer(**overrides: Any) -> Callable[[RecordedRequest], httpx.Response]:
    """Answer by agent; an override is a dict, or a list of dicts consumed one per call."""
    queues = {agent: list(value) if isinstance(value, list) else value for agent, value in overrides.items()}

    def answer(request: RecordedRequest) -> httpx.Response:
        if request.path.endswith("/models"):
            return models_response(["test-model"])
        agent = agent_of(request)
        override = queues.get(agent)
        if isinstance(override, list):
            body = override.pop(0) if len(override) > 1 else override[0]
        elif override is not None:
            body = override
        else:
            body = DEFAULT_OUTPUTS[agent]()
        return chat_response(body, usage=(200, 80))

    return answer


def answers(count: int, **overrides: Any) -> list[Callable[[RecordedRequest], httpx.Response]]:
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
