"""Whether a batch lets its steps call the model: an admin's pause and cancel (a batch also
pauses itself at its budget cap: see `budget`).

A paused batch starts no LLM call. A step that comes up stays as it is and its message is
dropped (the recovery pass leaves paused batches alone); batch_resume enqueues the batch's
steps again. A step already calling the model finishes, its retries included, and its
output is kept.

A cancelled batch starts none either: its open cases are cancelled and its waiting steps
failed, and a step in the middle of its retries stops before its next attempt.
"""

from __future__ import annotations

from collections.abc import Callable

from generation.llm import LlmCallError
from generation.models import BATCH_HOLDING_STATUSES, BatchStatus, CallErrorKind, GenerationBatch


class BatchCancelled(LlmCallError):
    """The step's batch was cancelled while the step was between two attempts."""

    def __init__(self) -> None:
        super().__init__("The batch was cancelled: no further LLM call was made.", kind=CallErrorKind.NONE)


def _batch_status(batch_id: int) -> str | None:
    # Read fresh: the pause or cancel comes from another process.
    return GenerationBatch.objects.filter(pk=batch_id).values_list("status", flat=True).first()


def batch_accepts_new_calls(batch: GenerationBatch) -> bool:
    """Whether a step of `batch` may start an LLM call now."""
    return _batch_status(batch.pk) not in BATCH_HOLDING_STATUSES


def holds_its_steps(batch: GenerationBatch) -> bool:
    """A paused batch: its steps are left as they are, without being claimed; batch_resume
    enqueues them again."""
    return batch.status == BatchStatus.PAUSED


def stop_when_cancelled(*, batch_id: int) -> Callable[[], None]:
    """A check for structured_completion to run before each attempt: a cancelled batch
    makes no further call (a paused one lets its in-flight calls finish). The first attempt
    goes by the status the step's claim read a moment before (step_claim_read); each later
    one reads it afresh."""
    attempts_before = 0

    def check() -> None:
        nonlocal attempts_before
        attempts_before += 1
        if attempts_before > 1 and _batch_status(batch_id) == BatchStatus.CANCELLED:
            raise BatchCancelled

    return check
