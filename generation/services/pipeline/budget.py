"""A batch's budget cap: no step starts whose cost would take the batch past it.

Before a step of a capped batch is claimed, what the batch has spent, what its running steps
still hold in reserve and the step's own reserve (its agent's high cost per step, from the
estimate the batch kept at launch) are added up under the batch's row lock. When the sum
would pass the cap, the batch is paused instead, with the budget as its reason: the step stays
pending, nothing fails, and the calls in flight finish and are kept (the pause machinery of
`control` and batch_resume). Raising the cap (generation.services.batches.batch_budget_set)
resumes the batch.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from generation import selectors
from generation.models import BATCH_STARTABLE_STATUSES, BatchStatus, GenerationBatch, PauseReason, PipelineStep
from generation.services.pipeline.steps import step_claim, step_claimable

logger = logging.getLogger(__name__)

# The key of GenerationBatch.cost_estimate that holds each agent's reserve per step.
STEP_RESERVE_KEY = "step_reserve"


def step_reserve_of(estimate: dict[str, Any] | None, agent: str) -> Decimal:
    """The reserve a batch's stored estimate holds for one step of `agent` (none without one)."""
    return Decimal(((estimate or {}).get(STEP_RESERVE_KEY) or {}).get(agent, "0"))


def step_claim_within_budget(*, step_id: int, task_id: str) -> PipelineStep | None:
    """step_claim, holding the step's reserve against its batch's cap; None when the message
    has nothing to do, or when the step does not fit and the batch was paused."""
    row = PipelineStep.objects.filter(pk=step_id).values_list("case__batch_id", "case__batch__budget").first()
    if row is None or row[1] is None:
        return step_claim(step_id=step_id, task_id=task_id)
    with transaction.atomic():
        batch = GenerationBatch.objects.select_for_update(of=("self",)).get(pk=row[0])
        step = PipelineStep.objects.filter(step_claimable(now=timezone.now()), pk=step_id).first()
        if batch.budget is None or step is None:
            return step_claim(step_id=step_id, task_id=task_id)
        reserve = step_reserve_of(batch.cost_estimate, step.agent)
        committed = selectors.batch_spent(batch_id=batch.pk) + selectors.batch_reserved_cost(
            batch_id=batch.pk, excluding_step_id=step.pk
        )
        if committed + reserve > batch.budget:
            _pause_at_cap(batch)
            logger.info(
                "Batch %s paused at its $%s cap: $%s committed, step %s needs $%s.",
                batch.pk,
                batch.budget,
                committed,
                step,
                reserve,
            )
            return None
        return step_claim(step_id=step_id, task_id=task_id, reserved_cost=reserve)


def _pause_at_cap(batch: GenerationBatch) -> None:
    GenerationBatch.objects.filter(pk=batch.pk, status__in=BATCH_STARTABLE_STATUSES).update(
        status=BatchStatus.PAUSED, pause_reason=PauseReason.BUDGET, updated_at=timezone.now()
    )


def budget_fits_next_step(*, batch: GenerationBatch) -> bool:
    """Whether the batch can start another step of its dearest agent under its cap (what a
    raised cap must allow before it resumes the batch)."""
    if batch.budget is None:
        return True
    reserves = (batch.cost_estimate or {}).get(STEP_RESERVE_KEY) or {}
    dearest = max((step_reserve_of(batch.cost_estimate, agent) for agent in reserves), default=Decimal(0))
    committed = selectors.batch_spent(batch_id=batch.pk) + selectors.batch_reserved_cost(batch_id=batch.pk)
    return committed + dearest <= batch.budget
