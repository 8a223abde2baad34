from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from review.datasets.export import (
    FORMATS,
    PROFILES,
    ExportFilters,
    ExportOptionError,
    ExportOptions,
    dataset_export_write,
)
from review.datasets.near_duplicates import KEEP_ALL, NEAR_DUPLICATE_POLICIES
from review.datasets.splits import (
    DEFAULT_GROUP_LEVEL,
    GROUP_LEVELS,
    SPLIT_MODES,
    SplitOptionError,
    SplitPlan,
    ratios_parse,
)


def _csv_list(raw: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def _day(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError as error:
        raise CommandError(f"{raw!r} is not a date like 2025-01-31") from error


class Command(BaseCommand):
    help = (
        "Export the approved dialogue-note pairs (the same code as the export page, run synchronously). "
        "OUT ending in .zip writes a zip bundle, otherwise a folder: data/<split>.<format> + README.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="jsonl")
        parser.add_argument("--profile", choices=PROFILES, default="medsynth")
        parser.add_argument(
            "--split",
            choices=SPLIT_MODES,
            default="none",
            help="grouped: no group (see --group-by) in two splits; stratified: every code in every split",
        )
        parser.add_argument(
            "--group-by",
            choices=GROUP_LEVELS,
            default=DEFAULT_GROUP_LEVEL,
            help="grouped splits: the group kept in one split (default: category, the first three characters)",
        )
        parser.add_argument(
            "--stratify-by-chapter",
            action="store_true",
            help="grouped splits: spread the groups of each chapter over the splits in the ratios",
        )
        parser.add_argument(
            "--keep-examples-together",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="grouped splits: keep each in-context example in the split of the pairs made from it (default on)",
        )
        parser.add_argument("--ratios", default="0.8,0.1,0.1", help="train,validation,test (default 0.8,0.1,0.1)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--batch", action="append", type=int, default=[], help="batch id (repeatable)")
        parser.add_argument("--codes", help="comma-separated ICD-10 codes, with or without the dot")
        parser.add_argument("--chapters", help="comma-separated chapter numbers, e.g. 4,9")
        parser.add_argument("--approved-from", help="first approval date, YYYY-MM-DD")
        parser.add_argument("--approved-to", help="last approval date, YYYY-MM-DD (inclusive)")
        parser.add_argument("--min-agreement", type=float, help="minimum share of reviewers who approved, 0-1")
        parser.add_argument(
            "--original-header",
            action="store_true",
            help="medsynth profile: write the published ' Note' header verbatim",
        )
        parser.add_argument("--licence", default="other", help="licence identifier written into the card")
        parser.add_argument(
            "--near-duplicates",
            choices=NEAR_DUPLICATE_POLICIES,
            default=KEEP_ALL,
            help="keep_all: keep every pair, the card reports the clusters; keep_one: one pair per cluster",
        )
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            export_options = ExportOptions(
                fmt=options["fmt"],
                profile=options["profile"],
                split=SplitPlan(
                    mode=options["split"],
                    ratios=ratios_parse(options["ratios"]),
                    seed=options["seed"],
                    group_level=options["group_by"],
                    stratify_by_chapter=options["stratify_by_chapter"],
                ),
                filters=ExportFilters(
                    batch_ids=tuple(options["batch"]),
                    codes=_csv_list(options["codes"]),
                    chapters=_csv_list(options["chapters"]),
                    approved_from=_day(options["approved_from"]),
                    approved_to=_day(options["approved_to"]),
                    min_agreement=options["min_agreement"],
                ),
                original_header=options["original_header"],
                near_duplicates=options["near_duplicates"],
                licence=options["licence"],
                keep_examples_together=options["keep_examples_together"],
            )
        except (ExportOptionError, SplitOptionError) as error:
            raise CommandError(str(error)) from error
        result = dataset_export_write(options=export_options, out=options["out"])
        files = ", ".join(result.data_files.values())
        self.stdout.write(self.style.SUCCESS(f"Exported {result.rows} pair(s) to {result.path} ({files}, README.md)"))
