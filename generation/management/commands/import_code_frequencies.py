from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.services.catalogue import FrequencyFileError, code_frequencies_import


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
            result = code_frequencies_import(data=path.read_bytes(), delimiter=delimiter)
        except FrequencyFileError as error:
            raise CommandError(f"{path}: {error}") from error
        styles = {"success": self.style.SUCCESS, "warning": self.style.WARNING}
        for level, message in result.report():
            self.stdout.write(styles.get(level, str)(message))
