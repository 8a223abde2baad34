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
Everything is priced with the model's price table (LlmModel.prices, its batch prices for a
batch run on the provider's Batch API): cached input tokens at
the cached-input price. Without history, the system prompt (instructions and examples, the
same for every case of a chapter) is taken as cached after its first call, as providers with
prompt caching report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from generation import selectors
from generation.models import (
    EXECUTION_CONFIG_KEY,
    AgentName,
    ExecutionMode,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    LlmModel,
)
from generation.services.estimates.costs import SOURCE_HISTORY, SOURCE_PROMPTS, StepCost, money
from generation.services.estimates.history import step_from_history, total_spread
from generation.services.estimates.prompts import PromptSize, mean_similar_shown, sizes_by_agent, step_from_prompts
from generation.services.pipeline.budget import STEP_RESERVE_KEY
from generation.services.pipeline.config import AGENT_MODULES, JUDGE_LLM, PipelineConfig, pipeline_config

__all__ = [
    "SOURCE_HISTORY",
    "SOURCE_PROMPTS",
    "AgentEstimate",
    "BatchEstimate",
    "batch_estimate",
    "mean_similar_shown",
    "scenario_rounds",
]

# Past steps an agent needs on a model and prompt version before its history is trusted.
MIN_HISTORY_STEPS = 20
# The most recent steps read per agent: enough for a stable mean, and a bounded query.
HISTORY_STEPS_READ = 2_000
# Without history, the judge is assumed to reject this share of scenarios at the high end.
HIGH_REJECTION_RATE = 0.25


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


# --- The batch ---------------------------------------------------------------------------


def _agent_estimate(agent: str, step: StepCost, *, steps: float, steps_low: float, steps_high: float) -> AgentEstimate:
    if step.source == SOURCE_HISTORY:
        spread = total_spread(step, steps=steps)
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
        cost_low=money(low),
        cost=money(step.cost * Decimal(str(steps))),
        cost_high=money(high),
        step_reserve=money(max(step.cost_high, step.cost)),
    )


def _steps_per_case(config: PipelineConfig, *, rejection_rate: float) -> dict[str, float]:
    """How many steps of each agent one case runs: the scenario agents once per round (the
    judge makes no call when only the near-duplicate check runs), the others once."""
    rounds = scenario_rounds(rejection_rate=rejection_rate, max_revisions=config.max_scenario_revisions)
    steps: dict[str, float] = dict.fromkeys(AGENT_MODULES, 1.0)
    steps[AgentName.SCENARIO_PROVIDER] = rounds
    steps[AgentName.SCENARIO_JUDGE] = rounds if config.judge_mode == JUDGE_LLM else 0.0
    return steps


def batch_estimate(
    *,
    codes: list[IcdCode],
    pairs_per_code: int,
    endpoint: LlmEndpoint,
    model: str,
    config: dict[str, Any],
    cases: int | None = None,
) -> BatchEstimate:
    """The estimate of a batch of `pairs_per_code` cases per code on `endpoint` / `model`
    (`cases`: the batch's total when the codes' counts differ, as in a top-up)."""
    settings = pipeline_config(batch=GenerationBatch(endpoint=endpoint, model=model, config=config))
    listed = LlmModel.objects.filter(endpoint=endpoint, name=model).first()
    # A batch run on the provider's Batch API pays its batch prices.
    in_provider_batch = config.get(EXECUTION_CONFIG_KEY) == ExecutionMode.PROVIDER_BATCH
    price = listed.prices(batch=in_provider_batch) if listed else None
    cases = len(codes) * pairs_per_code if cases is None else cases
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
            step = step_from_history(history, price)
        else:
            if sizes is None:
                sizes = sizes_by_agent(codes=codes, endpoint=endpoint, config=settings, pairs_per_code=pairs_per_code)
            repeats = max(steps - len(sizes[agent]), 0.0)
            step = step_from_prompts(
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
        priced=price is not None and (price.input > 0 or price.output > 0),
        judge_rejection_rate=rate,
        agents=agents,
    )
