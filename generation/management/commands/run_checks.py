from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.checks import CHECK_CODES
from generation.services.checks import stale_cases_recheck


class Command(BaseCommand):
    help = (
        "Check again every case whose current note or dialogue was checked by an older version of a "
        "check (or never). Idempotent: a second run rechecks nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=200, help="Cases read per query (default 200).")
        parser.add_argument(
            "--check", action="append", choices=CHECK_CODES, metavar="CODE", help="Only this check (repeatable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1.")
        codes = tuple(options["check"]) if options["check"] else None
        counts = stale_cases_recheck(batch_size=options["batch"], codes=codes)
        self.stdout.write(
            f"Cases: {counts.cases_seen} seen, {counts.cases_rechecked} rechecked, "
            f"{counts.cases_skipped} changed meanwhile (their writer rechecks them)."
        )
