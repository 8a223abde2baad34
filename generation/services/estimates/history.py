"""One agent step from the agent's past steps: mean tokens and the spread of their cost."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from generation import selectors
from generation.models import TokenPrices
from generation.services.estimates.costs import SOURCE_HISTORY, StepCost, priced

# Half-width of the history range, in standard deviations (about a 95% interval).
HISTORY_SPREAD = 2.0


def step_from_history(usages: Sequence[selectors.StepUsage], price: TokenPrices | None) -> StepCost:
    def cost_of(usage: selectors.StepUsage) -> Decimal:
        return priced(price, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens)

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


def total_spread(step: StepCost, *, steps: float) -> float:
    """Half-width of the range of `steps` steps' total cost: the batch's own spread over its
    steps, plus the uncertainty of the historical mean."""
    variance = steps * step.cost_variance + steps**2 * step.cost_variance / step.history_steps
    return HISTORY_SPREAD * math.sqrt(variance)
