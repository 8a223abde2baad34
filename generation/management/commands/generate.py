from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation import selectors
from generation.management.arguments import budget_amount
from generation.models import BATCH_ASSIGNMENT_REQUIRED, EXECUTION_CONFIG_KEY, AgentName, ExecutionMode
from generation.services.batches import BatchPlanError, BatchRequest, batch_create, batch_request_estimate
from generation.services.code_selection import split_list
from generation.services.estimates import BatchEstimate
from generation.services.pipeline import GATE_STAGES, JUDGE_LLM, JUDGE_SIMILARITY_ONLY

BAR_WIDTH = 30


def estimate_lines(estimate: BatchEstimate) -> list[str]:
    """The estimate as a plain-text table: one row per agent, then the total."""
    lines = [
        f"Estimate for {estimate.cases} case(s) on {estimate.endpoint_name} ({estimate.model}):",
        f"{'agent':<20} {'source':<8} {'calls':>8} {'input tok':>11} {'output tok':>11} "
        f"{'low $':>10} {'expected $':>11} {'high $':>10}",
    ]
    for row in estimate.agents:
        lines.append(
            f"{row.label:<20} {row.source:<8} {row.calls:>8.1f} {row.input_tokens:>11,} {row.output_tokens:>11,} "
            f"{row.cost_low:>10.4f} {row.cost:>11.4f} {row.cost_high:>10.4f}"
        )
    lines.append(
        f"{'total':<20} {'':<8} {estimate.calls:>8.1f} {estimate.input_tokens:>11,} {estimate.output_tokens:>11,} "
        f"{estimate.cost_low:>10.4f} {estimate.cost:>11.4f} {estimate.cost_high:>10.4f}"
    )
    if not estimate.priced:
        lines.append("No price is set for this model (LLM models in the admin): the costs show as $0.")
    return lines


class Command(BaseCommand):
    help = "Plan and launch a generation batch from the command line (headless use)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_argument_group("codes", "A list of codes, or a top N and/or chapter and block filters")
        which.add_argument("--codes", help="Comma-separated ICD-10-CM codes, with or without the dot: I10,E11.9")
        which.add_argument("--top", type=int, help="The N most frequent codes (imported frequencies)")
        which.add_argument("--chapter", help="Only these chapters (1-22, comma-separated); alone: all their codes")
        which.add_argument("--blocks", default="", help="Only these blocks (comma-separated: E08-E13,I10-I1A)")
        which.add_argument(
            "--stratify",
            type=int,
            metavar="MIN",
            help="Spread the top N across chapters by frequency, at least MIN codes per chapter",
        )
        parser.add_argument("--per-code", type=int, default=1, help="Pairs per code (default 1)")
        topup = parser.add_argument_group("top-up", "Plan only what each code lacks to reach K approved pairs")
        topup.add_argument(
            "--target-approved",
            type=int,
            metavar="K",
            help="K - approved - underway new pairs per code, over every batch (instead of --per-code)",
        )
        topup.add_argument("--topup-per-code", type=int, metavar="N", help="At most N new pairs for one code")
        topup.add_argument("--topup-total", type=int, metavar="N", help="At most N new pairs in all")
        parser.add_argument("--endpoint", default="", help="LLM endpoint name (default: the default endpoint)")
        parser.add_argument("--model", default="", help="Model (default: the endpoint's default model)")
        parser.add_argument("--gates", default="", help=f"Human review gates: any of {','.join(GATE_STAGES)}")
        parser.add_argument("--reviews", type=int, default=1, help="Independent reviews per item (default 1)")
        parser.add_argument(
            "--assignment-required",
            action="store_true",
            help="Only the reviewers an admin assigns to a case may review it",
        )
        parser.add_argument("--name", default="", help="Batch name")
        parser.add_argument(
            "--judge",
            choices=[JUDGE_LLM, JUDGE_SIMILARITY_ONLY],
            default="",
            help="Scenario judge: the LLM (default) or the near-duplicate check only (default on the demo model)",
        )
        parser.add_argument(
            "--temperature",
            action="append",
            default=[],
            metavar="AGENT=VALUE",
            help="Override an agent's temperature, e.g. note_writer=0.7 (repeatable)",
        )
        parser.add_argument(
            "--budget",
            type=budget_amount,
            default=None,
            metavar="USD",
            help="Cost cap: the batch pauses (never fails) before a step would take it past this; "
            "raise the cap on the batch page to resume",
        )
        parser.add_argument(
            "--estimate",
            action="store_true",
            help="Print the cost estimate (calls, tokens and cost per agent, with a range) and create nothing",
        )
        parser.add_argument(
            "--execution",
            choices=ExecutionMode.values,
            default=ExecutionMode.REALTIME,
            help="realtime (default), or batch: the provider's Batch API at its batch price, results within "
            "its completion window (the endpoint must support it)",
        )
        parser.add_argument(
            "--retry-realtime",
            action="store_true",
            help="With --execution batch: a step whose provider-batch line failed or expired runs realtime "
            "instead of waiting for the next provider batch",
        )
        parser.add_argument("--wait", action="store_true", help="Show progress until the batch finishes")
        parser.add_argument("--poll-seconds", type=float, default=2.0, help="Seconds between updates with --wait")
        parser.add_argument("--timeout", type=float, default=0, help="Stop waiting after this many seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        request = BatchRequest(
            codes=split_list(options["codes"] or ""),
            top=options["top"],
            chapter=options["chapter"] or "",
            blocks=split_list(options["blocks"]),
            minimum_per_chapter=options["stratify"],
            target_approved=options["target_approved"],
            topup_per_code_cap=options["topup_per_code"],
            topup_total_cap=options["topup_total"],
            pairs_per_code=options["per_code"],
            endpoint_name=options["endpoint"],
            model=options["model"],
            gates=[gate.strip() for gate in options["gates"].split(",") if gate.strip()],
            reviews_required=options["reviews"],
            name=options["name"],
            config=self._config(options),
            budget=options["budget"],
        )
        if options["estimate"]:
            try:
                estimate = batch_request_estimate(request=request)
            except BatchPlanError as error:
                raise CommandError(str(error)) from error
            self.stdout.write("\n".join(estimate_lines(estimate)))
            self.stdout.write("Nothing was created (--estimate).")
            return
        try:
            batch = batch_create(request=request)
        except BatchPlanError as error:
            raise CommandError(str(error)) from error
        endpoint = batch.endpoint
        self.stdout.write(
            f"Batch {batch.pk} '{batch.name}': {batch.planned_count} case(s) planned on "
            f"{endpoint.name if endpoint else '?'} ({batch.model})."
        )
        spending = selectors.batch_progress(batch_id=batch.pk).spending
        if spending.estimate is not None:
            cap = f"; cap ${spending.budget}" if spending.budget is not None else ""
            self.stdout.write(
                f"Estimated cost ${spending.estimate:.4f} (${spending.estimate_low:.4f} to "
                f"${spending.estimate_high:.4f}){cap}."
            )
        if endpoint is not None and endpoint.is_local_demo:
            self.stdout.write(
                self.style.WARNING("Local demo model: its text is for trying the product, not clinical content.")
            )
        if options["wait"]:
            self._wait(batch.pk, poll=options["poll_seconds"], timeout=options["timeout"])
        else:
            self.stdout.write("Queued; a worker runs it (`make run` starts one). Add --wait to follow it here.")

    @staticmethod
    def _config(options: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {"judge_mode": options["judge"]} if options["judge"] else {}
        if options["execution"] != ExecutionMode.REALTIME:
            config[EXECUTION_CONFIG_KEY] = options["execution"]
        if options["retry_realtime"]:
            if options["execution"] != ExecutionMode.PROVIDER_BATCH:
                raise CommandError("--retry-realtime applies to --execution batch only.")
            config["batch_retry_realtime"] = True
        temperatures: dict[str, float] = {}
        for item in options["temperature"]:
            agent, _, value = item.partition("=")
            if agent.strip() not in AgentName.values:
                raise CommandError(f"--temperature: unknown agent {agent!r}; agents: {', '.join(AgentName.values)}.")
            try:
                temperatures[agent.strip()] = float(value)
            except ValueError as error:
                raise CommandError(f"--temperature {item!r}: the value must be a number.") from error
        if temperatures:
            config["temperatures"] = temperatures
        if options["assignment_required"]:
            config[BATCH_ASSIGNMENT_REQUIRED] = True
        return config

    def _wait(self, batch_id: int, *, poll: float, timeout: float) -> None:
        started = time.monotonic()
        while True:
            progress = selectors.batch_progress(batch_id=batch_id)
            self._draw(progress)
            if progress.finished:
                break
            if timeout and time.monotonic() - started > timeout:
                self.stdout.write("")
                raise CommandError(
                    f"Still running after {timeout:.0f}s (is a worker running?). The batch continues; "
                    f"see its page or run this command again."
                )
            time.sleep(poll)
        self.stdout.write("")
        self._summary(selectors.batch_progress(batch_id=batch_id))

    def _draw(self, progress: selectors.BatchProgress) -> None:
        filled = int(BAR_WIDTH * progress.fraction_done)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = (
            f"\r[{bar}] {progress.settled}/{progress.counts.planned} cases settled "
            f"({progress.counts.failed} failed, {progress.calls} calls)"
        )
        self.stdout.write(line, ending="")
        self.stdout.flush()

    def _summary(self, progress: selectors.BatchProgress) -> None:
        self.stdout.write(self.style.SUCCESS(f"Batch {progress.batch_id} {progress.status}."))
        self.stdout.write(f"  cases done:   {progress.counts.produced} of {progress.counts.planned}")
        self.stdout.write(f"  cases failed: {progress.counts.failed}")
        self.stdout.write(f"  LLM calls:    {progress.calls} ({progress.failed_calls} failed)")
        self.stdout.write(f"  tokens:       {progress.input_tokens} in, {progress.output_tokens} out")
        self.stdout.write(f"  cost:         ${progress.cost:.4f}")
        self.stdout.write(f"  wall time:    {progress.wall_time_text}")
