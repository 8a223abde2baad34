from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.services.catalogue import FrequencyFileError, code_frequencies_import

_SHOWN = 10


class Command(BaseCommand):
    help = (
        "Import code frequencies from a CSV with the header code,count[,description]. Codes may have the dot "
        "or not. Replaces every previously imported frequency; a malformed file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--delimiter", default=",", help="Column delimiter (default ,)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        delimiter = options["delimiter"].replace("\\t", "\t")
        try:
            result = code_frequencies_import(path=path, delimiter=delimiter)
        except FrequencyFileError as error:
            raise CommandError(f"{path}: {error}. Nothing was imported.") from error
        self.stdout.write(self.style.SUCCESS(f"{result.rows} rows read: {result.matched} matched ICD-10-CM codes."))
        self._report("unknown codes", result.unknown)
        self._report("codes that look like ICD-9 (not imported)", result.icd9_like)

    def _report(self, label: str, codes: list[str]) -> None:
        if not codes:
            self.stdout.write(f"0 {label}.")
            return
        shown = ", ".join(codes[:_SHOWN]) + (" ..." if len(codes) > _SHOWN else "")
        self.stdout.write(self.style.WARNING(f"{len(codes)} {label}: {shown}"))
