from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generation.services.near_duplicates import near_duplicates_index_all, near_duplicates_rebuild


class Command(BaseCommand):
    help = (
        "Index the current note and dialogue of every case that has no up-to-date near-duplicate signature "
        "(idempotent). --rebuild first recomputes every band and pair from the stored signatures, without "
        "hashing text again (after a change of NEAR_DUPLICATE_THRESHOLD)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="Recompute bands and pairs from the signatures.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rebuild"]:
            self.stdout.write(f"Rebuilt the index from {near_duplicates_rebuild():,} stored signature(s).")
        self.stdout.write(f"Indexed {near_duplicates_index_all():,} new or changed text(s).")
