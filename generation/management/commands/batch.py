"""Operate a running batch from the command line: the batch page's buttons and its budget
form, headless."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.errors import DomainError
from generation.management.arguments import budget_amount
from generation.models import GenerationBatch
from generation.services.batches import batch_budget_set, batch_cancel, batch_pause, batch_resume, batch_retry_failed


def _pause(batch: GenerationBatch) -> str:
    if batch_pause(batch=batch):
        return "paused: no new LLM call starts; the calls in flight finish and are kept"
    return "was already paused"


def _resume(batch: GenerationBatch) -> str:
    return f"resumed: {batch_resume(batch=batch)} waiting step(s) sent to the workers again"


def _cancel(batch: GenerationBatch) -> str:
    return f"cancelled: {batch_cancel(batch=batch)} unfinished case(s) stopped; everything produced is kept"


def _retry_failed(batch: GenerationBatch) -> str:
    return f"{batch_retry_failed(batch=batch)} failed case(s) sent back to the queue"


ACTIONS = {"pause": _pause, "resume": _resume, "cancel": _cancel, "retry-failed": _retry_failed}
BUDGET = "budget"


class Command(BaseCommand):
    help = "Pause, resume, cancel a generation batch, or run its failed steps again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=sorted([*ACTIONS, BUDGET]))
        parser.add_argument("batch_id", type=int, metavar="ID", help="The batch's number (see its page's address)")
        parser.add_argument(
            "--amount",
            type=budget_amount,
            metavar="USD",
            help="budget: the new cost cap (a batch paused at its cap resumes once its next step fits)",
        )
        parser.add_argument("--no-cap", action="store_true", help="budget: remove the cap")

    def handle(self, *args: Any, **options: Any) -> None:
        batch = GenerationBatch.objects.filter(pk=options["batch_id"]).first()
        if batch is None:
            raise CommandError(f"No batch {options['batch_id']}.")
        try:
            if options["action"] == BUDGET:
                self.stdout.write(f"Batch {batch.pk} ({batch.name}): {self._budget(batch, options)}")
                return
            outcome = ACTIONS[options["action"]](batch)
        except DomainError as refusal:
            raise CommandError(str(refusal)) from refusal
        self.stdout.write(f"Batch {batch.pk} ({batch.name}) {outcome}.")

    @staticmethod
    def _budget(batch: GenerationBatch, options: dict[str, Any]) -> str:
        if options["no_cap"] == (options["amount"] is not None):
            raise CommandError("budget: give either --amount USD or --no-cap.")
        return batch_budget_set(batch=batch, budget=options["amount"]).summary
