"""One agent step's cost, however it was estimated, and the pricing rule the estimate uses."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from generation.models import TokenPrices

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


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def priced(price: TokenPrices | None, input_tokens: float, output_tokens: float, cached: float) -> Decimal:
    if price is None:
        return Decimal(0)
    return price.cost(
        input_tokens=round(input_tokens), output_tokens=round(output_tokens), cached_input_tokens=round(cached)
    )
