"""A batch's pipeline settings (GenerationBatch.config) with the defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from generation import selectors, similarity
from generation.agents import (
    dialogue_generator,
    dialogue_polisher,
    note_polisher,
    note_writer,
    scenario_judge,
    scenario_provider,
)
from generation.agents.limits import OutputLimits
from generation.models import EXECUTION_CONFIG_KEY, GATE_STAGES, AgentName, ExecutionMode, GenerationBatch, LlmEndpoint

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

JUDGE_LLM = "llm"
JUDGE_SIMILARITY_ONLY = "similarity"


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
    turn_bounds: dialogue_generator.TurnBounds = dialogue_generator.DEFAULT_TURN_BOUNDS
    # Provider-batch mode (generation.services.pipeline.provider_batches): an agent's waiting
    # steps go out as one provider batch once `flush_lines` wait or the oldest has waited
    # `flush_seconds`; a line that failed is retried in the next batch, or realtime.
    execution: str = ExecutionMode.REALTIME
    flush_lines: int = 100
    flush_seconds: int = 300
    retry_realtime: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def batch_endpoint(batch: GenerationBatch) -> LlmEndpoint | None:
    """Where a batch's calls go: its own endpoint, else the default one (an imported batch has
    none, so a reviewer's regeneration of it uses the default)."""
    return batch.endpoint or selectors.default_endpoint()


def pipeline_config(*, batch: GenerationBatch) -> PipelineConfig:
    raw = batch.config or {}
    endpoint = batch_endpoint(batch)
    demo = bool(endpoint and endpoint.is_local_demo)
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
        turn_bounds=dialogue_generator.TurnBounds(**(raw.get("turn_bounds") or {})),
        execution=ExecutionMode(raw.get(EXECUTION_CONFIG_KEY) or ExecutionMode.REALTIME),
        flush_lines=int(raw.get("batch_flush_lines", settings.PROVIDER_BATCH_FLUSH_LINES)),
        flush_seconds=int(raw.get("batch_flush_seconds", settings.PROVIDER_BATCH_FLUSH_SECONDS)),
        retry_realtime=bool(raw.get("batch_retry_realtime", False)),
    )
