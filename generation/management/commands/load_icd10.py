from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generation.models import IcdCode
from generation.services.catalogue import icd10_catalogue_load


class Command(BaseCommand):
    help = "Load (or refresh) the full ICD-10-CM catalogue from the simple-icd-10-cm package. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when codes are already loaded")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and IcdCode.objects.exists():
            self.stdout.write(f"ICD-10-CM catalogue already loaded ({IcdCode.objects.count()} codes).")
            return
        result = icd10_catalogue_load()
        self.stdout.write(
            self.style.SUCCESS(
                f"ICD-10-CM catalogue: {result.total} codes ({result.created} new, "
                f"{result.total - result.created} refreshed), {result.billable} billable."
            )
        )
