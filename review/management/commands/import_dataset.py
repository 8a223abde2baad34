from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.services.batches import ImportInterrupted
from medsynth_site.csv_cells import csv_safe_row
from review.datasets.imports import IMPORT_FORMATS, ImportRefused, dataset_import_file


def report_write(*, report: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["line", "column", "severity", "problem"], restval="error")
        writer.writeheader()
        writer.writerows(csv_safe_row(row) for row in report)


class Command(BaseCommand):
    help = (
        "Import dialogue-note pairs into the final-pair review queue as a new imported batch. "
        "medsynth: the published MedSynth CSV; aci: ACI-Bench CSV (dialogue, note; give --code when it has "
        "no code column); jsonl: this app's `full` export. All or nothing unless --valid-only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", dest="fmt", choices=IMPORT_FORMATS, required=True)
        parser.add_argument("--valid-only", action="store_true", help="import the good rows, report the others")
        parser.add_argument("--code", default="", help="ICD-10 code for every row of a file without a code column")
        parser.add_argument(
            "--code-to-be-assigned",
            action="store_true",
            help="import rows without a code (or with a retired one) without one; reviewers assign it before approval",
        )
        parser.add_argument("--report", type=Path, help="where to write the row report (default FILE.report.csv)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        report_path = options["report"] or path.with_name(path.name + ".report.csv")
        try:
            result = dataset_import_file(
                path=path,
                fmt=options["fmt"],
                valid_only=options["valid_only"],
                default_code=options["code"],
                code_to_be_assigned=options["code_to_be_assigned"],
            )
        except ImportRefused as refused:
            if refused.report:
                report_write(report=refused.report, path=report_path)
                for problem in refused.report[:20]:
                    self.stderr.write(f"line {problem['line']} {problem['column']}: {problem['problem']}")
                raise CommandError(f"{refused.message} Row report: {report_path}") from refused
            raise CommandError(refused.message) from refused
        except ImportInterrupted as interrupted:
            raise CommandError(str(interrupted)) from interrupted
        if result.report:
            report_write(report=result.report, path=report_path)
            warnings = sum(1 for entry in result.report if entry.get("severity") == "warning")
            self.stdout.write(
                f"{len(result.report) - warnings} problem(s) skipped, {warnings} warning(s); row report: {report_path}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {result.rows_imported} of {result.rows_total} row(s) into batch {result.batch.pk} "
                f"({result.batch.name}), waiting for the final pair review."
            )
        )
