from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generation.services.pipeline.leases import process_on_this_host
from generation.services.pipeline.steps import steps_release_worker
from generation.tasks import pipeline_recover_now


class Command(BaseCommand):
    help = (
        "Send again the pipeline steps that lost their worker or their task message (the pass the "
        "workers run at start and Celery beat runs every minute)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--release-worker",
            type=int,
            metavar="PID",
            help="The worker process PID on this machine has stopped: report the steps it was running as "
            "interrupted and let their leases run out, so the next pass sends them again (`make run` on Ctrl-C).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["release_worker"] is not None:
            interrupted = steps_release_worker(owner=process_on_this_host(pid=options["release_worker"]))
            if interrupted:
                self.stdout.write(
                    f"{interrupted} running step(s) were interrupted; they resume on the next start "
                    "(their finished LLM calls are kept)."
                )
            else:
                self.stdout.write("No step was interrupted.")
            return
        report = pipeline_recover_now()
        self.stdout.write(f"Recovery pass: {report}.")
