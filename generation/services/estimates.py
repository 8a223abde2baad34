"""What a batch will cost, before it runs: LLM calls, tokens and cost per agent and in total,
with a low / expected / high range. Reads only; nothing is written and no endpoint is called.

Per agent, one step's usage comes from one of two sources:

- **history**: the agent's past steps on the same model and prompt version, when there are
  at least MIN_HISTORY_STEPS of them. Their mean tokens (repair attempts and retries included)
  give the expected cost; the spread of their costs gives the range (a prediction interval of
  the batch's total: the batch's own spread plus the uncertainty of the mean).
- **prompts**: otherwise, the real prompts rendered for one sample code per ICD chapter of
  the batch (weighted by the chapter's share of the codes), measured at about 4 characters a
  token, with the agent's reference output: the worked example it imitates (a polisher
  returns what it was given), capped by max_tokens. The range: half the reference output
  and every stable prompt prefix cached, up to max_tokens (or twice the reference) without
  caching.

Scenario rounds (provider + judge) repeat when the judge rejects: the judge's past rejection
rate on the model sets how many rounds a case takes, up to the batch's revision cap.
Everything is priced with the model's price table (LlmModel.cost): cached input tokens at
the cached-input price. Without history, the system prompt (instructions and examples, the
same for every case of a chapter) is taken as cached after its first call, as providers with
prompt caching report it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
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
from generation.llm import request_sent, text_tokens
from generation.models import (
    AgentName,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    LlmModel,
    PhysicianRole,
    QualityVariable,
)
from generation.services.pipeline.budget import STEP_RESERVE_KEY
from generation.services.pipeline.config import AGENT_MODULES, JUDGE_LLM, PipelineConfig, pipeline_config
from generation.services.pipeline.runners.context import agent_request
from generation.services.pipeline.runners.scenario import judge_messages

# Past steps an agent needs on a model and prompt version before its history is trusted.
MIN_HISTORY_STEPS = 20
# The most recent steps read per agent: enough for a stable mean, and a bounded query.
HISTORY_STEPS_READ = 2_000
# Half-width of the history range, in standard deviations (about a 95% interval).
HISTORY_SPREAD = 2.0
# Without history, the judge is assumed to reject this share of scenarios at the high end.
HIGH_REJECTION_RATE = 0.25
# A reasoning field ("planning", "changes") and a judge's reason per criterion are not in
# the worked examples: their assumed length, in characters (the prompts ask for a few sentences).
REASONING_CHARS = 300
JUDGE_REASON_CHARS = 200

SOURCE_HISTORY = "history"
SOURCE_PROMPTS = "prompts"
CENT = Decimal("0.000001")


@dataclass(frozen=True)
class StepCost:
    """One step of an agent: mean calls and tokens, and its cost (mean, low, high)."""

    source: str
    history_steps: int
    calls: float
    input_tokens: float
    cached_input_tokens: float
    output_tokens: float
    cost: Decimal
    cost_low: Decimal
    cost_high: Decimal
    # Variance of one step's cost (history only): the batch total's range follows from it.
    cost_variance: float = 0.0


@dataclass(frozen=True)
class AgentEstimate:
    agent: str
    source: str
    history_steps: int
    steps: float
    calls: float
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_low: Decimal
    cost: Decimal
    cost_high: Decimal
    # Held against a budget cap while one step of the agent runs: its high cost.
    step_reserve: Decimal

    @property
    def label(self) -> str:
        return AgentName(self.agent).label


@dataclass(frozen=True)
class BatchEstimate:
    cases: int
    endpoint_name: str
    model: str
    priced: bool
    judge_rejection_rate: float
    agents: list[AgentEstimate]

    @property
    def calls(self) -> float:
        return sum(agent.calls for agent in self.agents)

    @property
    def input_tokens(self) -> int:
        return sum(agent.input_tokens for agent in self.agents)

    @property
    def cached_input_tokens(self) -> int:
        return sum(agent.cached_input_tokens for agent in self.agents)

    @property
    def output_tokens(self) -> int:
        return sum(agent.output_tokens for agent in self.agents)

    @property
    def cost(self) -> Decimal:
        return sum((agent.cost for agent in self.agents), Decimal(0))

    @property
    def cost_low(self) -> Decimal:
        return sum((agent.cost_low for agent in self.agents), Decimal(0))

    @property
    def cost_high(self) -> Decimal:
        return sum((agent.cost_high for agent in self.agents), Decimal(0))

    @property
    def judge_rejection_percent(self) -> int:
        return round(100 * self.judge_rejection_rate)

    @property
    def from_history(self) -> bool:
        return any(agent.source == SOURCE_HISTORY for agent in self.agents)

    def step_reserve(self, agent: str) -> Decimal:
        return next((row.step_reserve for row in self.agents if row.agent == agent), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        """What a batch keeps of its estimate (GenerationBatch.cost_estimate)."""
        return {
            "cases": self.cases,
            "model": self.model,
            "priced": self.priced,
            "calls": round(self.calls, 1),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": str(self.cost),
            "cost_low": str(self.cost_low),
            "cost_high": str(self.cost_high),
            STEP_RESERVE_KEY: {row.agent: str(row.step_reserve) for row in self.agents},
            "sources": {row.agent: row.source for row in self.agents},
        }


# --- Scenario rounds -----------------------------------------------------------------


def scenario_rounds(*, rejection_rate: float, max_revisions: int) -> float:
    """Expected provider (and judge) runs per case: one, plus one per rejection, up to the cap."""
    rate = min(max(rejection_rate, 0.0), 1.0)
    return sum(rate**revision for revision in range(max_revisions + 1))


# --- One step from history -----------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _step_from_history(usages: Sequence[selectors.StepUsage], price: LlmModel | None) -> StepCost:
    def cost_of(usage: selectors.StepUsage) -> Decimal:
        return _priced(price, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens)

    count = len(usages)
    costs = [float(cost_of(usage)) for usage in usages]
    mean = sum(costs) / count
    variance = sum((cost - mean) ** 2 for cost in costs) / max(count - 1, 1)
    spread = HISTORY_SPREAD * math.sqrt(variance)
    return StepCost(
        source=SOURCE_HISTORY,
        history_steps=count,
        calls=sum(usage.calls for usage in usages) / count,
        input_tokens=sum(usage.input_tokens for usage in usages) / count,
        cached_input_tokens=sum(usage.cached_input_tokens for usage in usages) / count,
        output_tokens=sum(usage.output_tokens for usage in usages) / count,
        cost=Decimal(str(mean)),
        cost_low=Decimal(str(max(mean - spread, 0.0))),
        cost_high=Decimal(str(mean + spread)),
        cost_variance=variance,
    )


def _priced(price: LlmModel | None, input_tokens: float, output_tokens: float, cached: float) -> Decimal:
    if price is None:
        return Decimal(0)
    return price.cost(
        input_tokens=round(input_tokens), output_tokens=round(output_tokens), cached_input_tokens=round(cached)
    )


# --- One step from the rendered prompts ------------------------------------------------


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
    conversation, params = request_sent(endpoint=endpoint, messages=sent, schema=bounded)
    text = "".join(message["content"] for message in conversation) + json.dumps(params["response_format"])
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


def _step_from_prompts(
    sizes: list[tuple[int, PromptSize]], *, max_tokens: int | None, cached_share: float, price: LlmModel | None
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
        cost=_priced(price, input_tokens, output, prefix * cached_share),
        cost_low=_priced(price, input_tokens, output / 2, prefix),
        cost_high=_priced(price, input_tokens, output_high, 0),
    )


# --- The batch ---------------------------------------------------------------------------


def _agent_estimate(agent: str, step: StepCost, *, steps: float, steps_low: float, steps_high: float) -> AgentEstimate:
    if step.source == SOURCE_HISTORY:
        # The batch's own spread over its steps, plus the uncertainty of the historical mean.
        spread = HISTORY_SPREAD * math.sqrt(
            steps * step.cost_variance + steps**2 * step.cost_variance / step.history_steps
        )
        low = Decimal(str(max(float(step.cost) * steps_low - spread, 0.0)))
        high = Decimal(str(float(step.cost) * steps_high + spread))
    else:
        low, high = step.cost_low * Decimal(str(steps_low)), step.cost_high * Decimal(str(steps_high))
    return AgentEstimate(
        agent=agent,
        source=step.source,
        history_steps=step.history_steps,
        steps=steps,
        calls=step.calls * steps,
        input_tokens=round(step.input_tokens * steps),
        cached_input_tokens=round(step.cached_input_tokens * steps),
        output_tokens=round(step.output_tokens * steps),
        cost_low=_money(low),
        cost=_money(step.cost * Decimal(str(steps))),
        cost_high=_money(high),
        step_reserve=_money(max(step.cost_high, step.cost)),
    )


def _steps_per_case(config: PipelineConfig, *, rejection_rate: float) -> dict[str, float]:
    """How many steps of each agent one case runs: the scenario agents once per round (the
    judge makes no call when only the near-duplicate check runs), the others once."""
    rounds = scenario_rounds(rejection_rate=rejection_rate, max_revisions=config.max_scenario_revisions)
    steps: dict[str, float] = dict.fromkeys(AGENT_MODULES, 1.0)
    steps[AgentName.SCENARIO_PROVIDER] = rounds
    steps[AgentName.SCENARIO_JUDGE] = rounds if config.judge_mode == JUDGE_LLM else 0.0
    return steps


def _sample_codes(codes: list[IcdCode]) -> list[tuple[int, IcdCode]]:
    """One code per ICD chapter of the batch (its first), with how many codes the chapter has."""
    per_chapter = Counter(code.chapter for code in codes)
    first = {code.chapter: code for code in reversed(codes)}
    return [(count, first[chapter]) for chapter, count in per_chapter.items()]


def batch_estimate(
    *, codes: list[IcdCode], pairs_per_code: int, endpoint: LlmEndpoint, model: str, config: dict[str, Any]
) -> BatchEstimate:
    """The estimate of a batch of `pairs_per_code` cases per code on `endpoint` / `model`."""
    settings = pipeline_config(batch=GenerationBatch(endpoint=endpoint, model=model, config=config))
    price = LlmModel.objects.filter(endpoint=endpoint, name=model).first()
    cases = len(codes) * pairs_per_code
    judge = selectors.judge_history(model=model)
    history_rate = judge.rejection_rate if judge.verdicts >= MIN_HISTORY_STEPS else None
    rate = history_rate or 0.0
    per_case = _steps_per_case(settings, rejection_rate=rate)
    per_case_low = _steps_per_case(settings, rejection_rate=rate / 2)
    per_case_high = _steps_per_case(
        settings, rejection_rate=HIGH_REJECTION_RATE if history_rate is None else min(1.5 * rate + 0.05, 0.95)
    )
    sizes: dict[str, list[tuple[int, PromptSize]]] | None = None
    agents = []
    for agent, module in AGENT_MODULES.items():
        history = selectors.agent_step_usage(
            agent=agent, model=model, prompt_version=module.PROMPT_VERSION, limit=HISTORY_STEPS_READ
        )
        steps = cases * per_case[agent]
        if len(history) >= MIN_HISTORY_STEPS:
            step = _step_from_history(history, price)
        else:
            if sizes is None:
                sizes = _sizes_by_agent(codes=codes, endpoint=endpoint, config=settings, pairs_per_code=pairs_per_code)
            repeats = max(steps - len(sizes[agent]), 0.0)
            step = _step_from_prompts(
                sizes[agent],
                max_tokens=settings.max_tokens.get(agent),
                cached_share=repeats / steps if steps else 0.0,
                price=price,
            )
        agents.append(
            _agent_estimate(
                agent, step, steps=steps, steps_low=cases * per_case_low[agent], steps_high=cases * per_case_high[agent]
            )
        )
    return BatchEstimate(
        cases=cases,
        endpoint_name=endpoint.name,
        model=model,
        priced=price is not None and (price.input_price_per_mtok > 0 or price.output_price_per_mtok > 0),
        judge_rejection_rate=rate,
        agents=agents,
    )


def _sizes_by_agent(
    *, codes: list[IcdCode], endpoint: LlmEndpoint, config: PipelineConfig, pairs_per_code: int
) -> dict[str, list[tuple[int, PromptSize]]]:
    roles = list(PhysicianRole.objects.filter(is_active=True))
    by_agent: dict[str, list[tuple[int, PromptSize]]] = {agent: [] for agent in AGENT_MODULES}
    for weight, code in _sample_codes(codes):
        sizes = _prompt_sizes(code=code, endpoint=endpoint, config=config, roles=roles, pairs_per_code=pairs_per_code)
        for agent, size in sizes.items():
            by_agent[agent].append((weight, size))
    return by_agent
