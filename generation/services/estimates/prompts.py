"""One agent step from the real prompts: rendered for a sample code per ICD chapter, with the
worked example's length as the expected answer."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from generation.agents.limits import OutputLimits
from generation.agents.prompting import Message
from generation.checks import coverage_misses
from generation.examples import WorkedExample, examples_for_code
from generation.llm import completion_request, text_tokens
from generation.models import AgentName, IcdCode, LlmEndpoint, PhysicianRole, QualityVariable, TokenPrices
from generation.services.estimates.costs import SOURCE_PROMPTS, StepCost, priced
from generation.services.pipeline.config import AGENT_MODULES, PipelineConfig
from generation.services.pipeline.runners.context import agent_request
from generation.services.pipeline.runners.scenario import judge_messages

# A reasoning field ("planning", "changes") and a judge's reason per criterion are not in
# the worked examples: their assumed length, in characters (the prompts ask for a few sentences).
REASONING_CHARS = 300
JUDGE_REASON_CHARS = 200


@dataclass(frozen=True)
class PromptSize:
    """One agent's request for one sample code, in tokens."""

    input_tokens: int
    prefix_tokens: int  # the first message: instructions and examples, cacheable
    output_tokens: int  # the reference output


def _request_tokens(
    *, endpoint: LlmEndpoint, config: PipelineConfig, messages: list[Message], schema: type[BaseModel]
) -> tuple[int, int]:
    """(all tokens, first-message tokens) of the request an agent would send."""
    sent, bounded = agent_request(endpoint=endpoint, config=config, messages=messages, schema=schema)
    request = completion_request(endpoint=endpoint, messages=sent, schema=bounded, temperature=0.0)
    conversation = request.messages
    text = "".join(message["content"] for message in conversation) + json.dumps(request.params["response_format"])
    return text_tokens(text), text_tokens(conversation[0]["content"])


def _within_limits(value: Any, limits: OutputLimits | None) -> Any:
    """A reference output as the batch's output limits would let a model write it."""
    if limits is None:
        return value
    if isinstance(value, str):
        return value[: limits.max_chars]
    if isinstance(value, list):
        return [_within_limits(item, limits) for item in value[: max(limits.max_items, limits.min_object_items)]]
    if isinstance(value, dict):
        return {key: _within_limits(item, limits) for key, item in value.items()}
    return value


def _reasoning() -> str:
    return "x" * REASONING_CHARS


def _reference_outputs(reference: WorkedExample, variable_keys: list[str]) -> dict[str, dict[str, Any]]:
    """What each agent is expected to write: the worked example's scenario, note and dialogue
    in the agent's output shape, with an allowance for its reasoning fields."""
    variables = reference.scenario.get("variables") or {}
    note = {key: str(reference.note.get(key, "")) for key in reference.note}
    verdict = {"reason": "x" * JUDGE_REASON_CHARS, "passed": True}
    return {
        AgentName.SCENARIO_PROVIDER: {
            "planning": _reasoning(),
            "role": reference.scenario.get("role", ""),
            "variables": {key: str(variables.get(key, "")) for key in variable_keys},
        },
        AgentName.SCENARIO_JUDGE: {**dict.fromkeys(scenario_judge.CRITERIA, verdict), "approved": True},
        AgentName.NOTE_WRITER: {"planning": _reasoning(), **note},
        AgentName.NOTE_POLISHER: {"changes": _reasoning(), **note},
        AgentName.DIALOGUE_GENERATOR: {"planning": _reasoning(), "turns": reference.dialogue.get("turns", [])},
        AgentName.DIALOGUE_POLISHER: {"missing_facts": [], "turns": reference.dialogue.get("turns", [])},
    }


@dataclass(frozen=True)
class _SampleInputs:
    """What the prompts of one sample code are rendered from."""

    code: IcdCode
    examples: list[WorkedExample]
    reference: WorkedExample
    variable_keys: list[str]
    roles: list[PhysicianRole]


def _agent_messages(
    inputs: _SampleInputs, config: PipelineConfig, *, similar: list[similarity.SimilarScenario]
) -> dict[str, tuple[list[Message], type[BaseModel]]]:
    """Every agent's real prompt and schema for the sample code, its inputs being the reference
    scenario, note and dialogue (what the agents before it would have written)."""
    code, reference = inputs.code, inputs.reference
    survey = selectors.latest_survey_snapshot()
    variables = selectors.ranked_variables(snapshot=survey)
    names = dict(QualityVariable.objects.values_list("key", "name"))
    role = config.fixed_role or str(reference.scenario.get("role", ""))
    note_text, dialogue_text = rendering.note_text(reference.note), rendering.dialogue_text(reference.dialogue)

    def bounded(schema: type[BaseModel]) -> type[BaseModel]:
        return dialogue_generator.with_turn_bounds(schema, config.turn_bounds)

    return {
        AgentName.SCENARIO_PROVIDER: (
            scenario_provider.build_messages(
                code=code,
                roles=inputs.roles,
                variables=variables,
                survey=survey,
                examples=inputs.examples,
                fixed_role=config.fixed_role,
            ),
            scenario_provider.output_schema(tuple(inputs.variable_keys)),
        ),
        AgentName.SCENARIO_JUDGE: (
            judge_messages(code=code, scenario=reference.scenario, similar=similar),
            scenario_judge.ScenarioJudgeOutput,
        ),
        AgentName.NOTE_WRITER: (
            note_writer.build_messages(
                code=code,
                role=role,
                scenario=reference.scenario,
                variables=variables,
                survey=survey,
                examples=inputs.examples,
                variable_names=names,
            ),
            note_writer.NoteWriterOutput,
        ),
        AgentName.NOTE_POLISHER: (note_polisher.build_messages(note=reference.note), note_polisher.NotePolisherOutput),
        AgentName.DIALOGUE_GENERATOR: (
            dialogue_generator.build_messages(role=role, polished_note=reference.note, examples=inputs.examples),
            bounded(dialogue_generator.DialogueGeneratorOutput),
        ),
        AgentName.DIALOGUE_POLISHER: (
            dialogue_polisher.build_messages(
                polished_note=reference.note,
                dialogue=reference.dialogue,
                coverage_misses=coverage_misses(note_text=note_text, dialogue_text=dialogue_text),
            ),
            bounded(dialogue_polisher.DialoguePolisherOutput),
        ),
    }


def mean_similar_shown(*, approved: int, pairs_per_code: int, k: int) -> float:
    """How many approved scenarios of its code the judge sees on average: the ones approved
    before the batch, and those of the batch's earlier cases of the code, up to k."""
    return sum(min(k, approved + slot) for slot in range(pairs_per_code)) / pairs_per_code


def _prompt_sizes(
    *, code: IcdCode, endpoint: LlmEndpoint, config: PipelineConfig, roles: list[PhysicianRole], pairs_per_code: int
) -> dict[str, PromptSize]:
    examples = examples_for_code(code=code, limit=config.examples_per_prompt)
    reference = (examples or examples_for_code(code=code, limit=1))[0]
    keys = list(QualityVariable.objects.filter(is_active=True).values_list("key", flat=True))
    inputs = _SampleInputs(code=code, examples=examples, reference=reference, variable_keys=keys, roles=roles)
    outputs = _reference_outputs(reference, keys)
    sizes = {}
    for agent, (messages, schema) in _agent_messages(inputs, config, similar=[]).items():
        total, prefix = _request_tokens(endpoint=endpoint, config=config, messages=messages, schema=schema)
        output = text_tokens(json.dumps(_within_limits(outputs[agent], config.limits), ensure_ascii=False))
        sizes[agent] = PromptSize(input_tokens=total, prefix_tokens=prefix, output_tokens=output)
    judge = sizes[AgentName.SCENARIO_JUDGE]
    shown = mean_similar_shown(
        approved=len(similarity.approved_scenarios(code=code)), pairs_per_code=pairs_per_code, k=config.similar_k
    )
    if shown:
        # One approved scenario shown to the judge costs about as much as the reference one.
        stand_in = similarity.SimilarScenario(case_id=0, version_id=0, similarity=0.5, content=reference.scenario)
        messages, schema = _agent_messages(inputs, config, similar=[stand_in])[AgentName.SCENARIO_JUDGE]
        with_one, _ = _request_tokens(endpoint=endpoint, config=config, messages=messages, schema=schema)
        judge_input = judge.input_tokens + round(shown * (with_one - judge.input_tokens))
        sizes[AgentName.SCENARIO_JUDGE] = PromptSize(judge_input, judge.prefix_tokens, judge.output_tokens)
    return sizes


def _weighted(sizes: list[tuple[int, PromptSize]], read: Callable[[PromptSize], int]) -> float:
    total = sum(weight for weight, _ in sizes)
    return sum(weight * read(size) for weight, size in sizes) / total


def step_from_prompts(
    sizes: list[tuple[int, PromptSize]], *, max_tokens: int | None, cached_share: float, price: TokenPrices | None
) -> StepCost:
    input_tokens = _weighted(sizes, lambda size: size.input_tokens)
    prefix = _weighted(sizes, lambda size: size.prefix_tokens)
    output = _weighted(sizes, lambda size: size.output_tokens)
    if max_tokens is not None:
        output = min(output, max_tokens)
    output_high = max_tokens if max_tokens is not None else 2 * output
    return StepCost(
        source=SOURCE_PROMPTS,
        history_steps=0,
        calls=1.0,
        input_tokens=input_tokens,
        cached_input_tokens=prefix * cached_share,
        output_tokens=output,
        cost=priced(price, input_tokens, output, prefix * cached_share),
        cost_low=priced(price, input_tokens, output / 2, prefix),
        cost_high=priced(price, input_tokens, output_high, 0),
    )


def _sample_codes(codes: list[IcdCode]) -> list[tuple[int, IcdCode]]:
    """One code per ICD chapter of the batch (its first), with how many codes the chapter has."""
    per_chapter = Counter(code.chapter for code in codes)
    first = {code.chapter: code for code in reversed(codes)}
    return [(count, first[chapter]) for chapter, count in per_chapter.items()]


def sizes_by_agent(
    *, codes: list[IcdCode], endpoint: LlmEndpoint, config: PipelineConfig, pairs_per_code: int
) -> dict[str, list[tuple[int, PromptSize]]]:
    roles = list(PhysicianRole.objects.filter(is_active=True))
    by_agent: dict[str, list[tuple[int, PromptSize]]] = {agent: [] for agent in AGENT_MODULES}
    for weight, code in _sample_codes(codes):
        sizes = _prompt_sizes(code=code, endpoint=endpoint, config=config, roles=roles, pairs_per_code=pairs_per_code)
        for agent, size in sizes.items():
            by_agent[agent].append((weight, size))
    return by_agent
