"""Reads for the batch page's cost section: the provider batches of a generation batch, what
batch pricing saved against realtime prices, and how much of each agent's input the
provider served from its prompt cache."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum

from generation.models import AgentCall, AgentName, LlmModel, ProviderBatch


def provider_batches_of(*, batch_id: int) -> list[ProviderBatch]:
    """The generation batch's provider batches, oldest first."""
    return list(ProviderBatch.objects.filter(generation_batch_id=batch_id).order_by("created_at", "pk"))


@dataclass(frozen=True)
class BatchSaving:
    """The calls answered in provider batches: what they cost, and what the same tokens
    would have cost at the realtime prices."""

    calls: int
    cost: Decimal
    realtime_cost: Decimal

    @property
    def saving(self) -> Decimal:
        return self.realtime_cost - self.cost

    @property
    def saving_percent(self) -> float | None:
        return float(self.saving / self.realtime_cost * 100) if self.realtime_cost else None


def batch_api_saving(*, batch_id: int) -> BatchSaving | None:
    """None when no call of the batch came from a provider batch."""
    totals = (
        AgentCall.objects.filter(case__batch_id=batch_id, provider_batch__isnull=False)
        .values("endpoint_id", "model")
        .annotate(
            calls=Count("pk"),
            input=Sum("input_tokens"),
            cached=Sum("cached_input_tokens"),
            output=Sum("output_tokens"),
            cost=Sum("cost"),
        )
    )
    rows = list(totals)
    if not rows:
        return None
    prices = {
        (model.endpoint_id, model.name): model.prices(batch=False)
        for model in LlmModel.objects.filter(endpoint_id__in={row["endpoint_id"] for row in rows})
    }
    realtime = Decimal(0)
    for row in rows:
        price = prices.get((row["endpoint_id"], row["model"]))
        if price is not None:
            realtime += price.cost(
                input_tokens=row["input"] or 0, cached_input_tokens=row["cached"] or 0, output_tokens=row["output"] or 0
            )
    return BatchSaving(
        calls=sum(row["calls"] for row in rows),
        cost=sum((row["cost"] or Decimal(0) for row in rows), Decimal(0)),
        realtime_cost=realtime,
    )


@dataclass(frozen=True)
class AgentCacheShare:
    agent: str
    input_tokens: int
    cached_input_tokens: int

    @property
    def label(self) -> str:
        return AgentName(self.agent).label

    @property
    def percent(self) -> float:
        return 100 * self.cached_input_tokens / self.input_tokens if self.input_tokens else 0.0


def cache_share_by_agent(*, batch_id: int) -> list[AgentCacheShare]:
    """Per agent, in pipeline order: input tokens, and those the provider's prompt cache served."""
    totals = (
        AgentCall.objects.filter(Q(case__batch_id=batch_id) & ~Q(agent=""))
        .values("agent")
        .annotate(input=Sum("input_tokens"), cached=Sum("cached_input_tokens"))
    )
    by_agent = {row["agent"]: row for row in totals}
    return [
        AgentCacheShare(
            agent=agent, input_tokens=by_agent[agent]["input"] or 0, cached_input_tokens=by_agent[agent]["cached"] or 0
        )
        for agent in AgentName.values
        if agent in by_agent
    ]
