"""Writing an export bundle (data files per split + README.md card), synchronously
for the command line or as a background job behind the export page.

Same options on the same data give identical bytes: rows come in (code, case id)
order, splits are seeded, no clock value is written and the zip entries carry a
fixed timestamp.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from generation.errors import DomainError
from generation.models import Case
from review.datasets.card import CardStats, card_markdown
from review.datasets.export.profiles import PROFILES, profile_row
from review.datasets.export.query import (
    CodeGroup,
    ExportFilters,
    approved_pairs,
    code_groups,
    example_links,
    exported_case_codes,
    pair_records,
)
from review.datasets.export.writers import FORMATS, RowWriter, row_writer
from review.datasets.near_duplicates import (
    KEEP_ALL,
    NEAR_DUPLICATE_POLICIES,
    NearDuplicateOutcome,
    near_duplicates_policy_apply,
)
from review.datasets.splits import DEFAULT_GROUP_LEVEL, SplitAssigner, SplitPlan
from review.models import DatasetExport, JobStatus

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 500
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
Progress = Callable[[int, int], None]


class ExportOptionError(DomainError):
    """Options that cannot describe an export."""


@dataclass(frozen=True)
class ExportOptions:
    fmt: str = "jsonl"
    profile: str = "medsynth"
    filters: ExportFilters = field(default_factory=ExportFilters)
    split: SplitPlan = field(default_factory=SplitPlan)
    original_header: bool = False
    licence: str = "other"
    # Grouped splits: an in-context example and the cases generated from it share a split.
    keep_examples_together: bool = True
    near_duplicates: str = KEEP_ALL

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ExportOptionError(f"unknown format {self.fmt!r}; use one of {', '.join(FORMATS)}")
        if self.profile not in PROFILES:
            raise ExportOptionError(f"unknown profile {self.profile!r}; use one of {', '.join(PROFILES)}")
        if self.near_duplicates not in NEAR_DUPLICATE_POLICIES:
            policies = ", ".join(NEAR_DUPLICATE_POLICIES)
            raise ExportOptionError(f"unknown near-duplicate policy {self.near_duplicates!r}; use one of {policies}")
        if self.original_header and self.profile != "medsynth":
            raise ExportOptionError("the original ' Note' header exists only in the medsynth profile")

    def to_params(self) -> dict[str, Any]:
        return {
            "format": self.fmt,
            "profile": self.profile,
            "filters": self.filters.to_params(),
            "split": {
                "mode": self.split.mode,
                "ratios": list(self.split.ratios),
                "seed": self.split.seed,
                "group_level": self.split.group_level,
                "stratify_by_chapter": self.split.stratify_by_chapter,
            },
            "original_header": self.original_header,
            "licence": self.licence,
            "keep_examples_together": self.keep_examples_together,
            "near_duplicates": self.near_duplicates,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ExportOptions:
        split = params.get("split") or {}
        ratios = tuple(split.get("ratios") or SplitPlan().ratios)
        return cls(
            fmt=params.get("format", "jsonl"),
            profile=params.get("profile", "medsynth"),
            filters=ExportFilters.from_params(params.get("filters") or {}),
            split=SplitPlan(
                mode=split.get("mode", "none"),
                ratios=ratios,
                seed=int(split.get("seed", 0)),
                group_level=split.get("group_level", DEFAULT_GROUP_LEVEL),
                stratify_by_chapter=bool(split.get("stratify_by_chapter")),
            ),
            original_header=bool(params.get("original_header")),
            licence=str(params.get("licence") or "other"),
            keep_examples_together=bool(params.get("keep_examples_together", True)),
            near_duplicates=str(params.get("near_duplicates") or KEEP_ALL),
        )


@dataclass(frozen=True)
class ExportResult:
    rows: int
    path: Path
    data_files: dict[str, str]


def kept_together_sets(
    *, options: ExportOptions, cases: QuerySet[Case], near_duplicates: NearDuplicateOutcome
) -> list[tuple[int, ...]]:
    """The sets of exported case ids that a grouped split must keep in one split: every
    near-duplicate cluster still exported, and each in-context example with a case generated
    from it (unless the export turned that off)."""
    if options.split.mode != "grouped":
        return []
    clusters = [tuple(sorted(cluster)) for cluster in near_duplicates.kept_clusters]
    examples = list(example_links(cases=cases)) if options.keep_examples_together else []
    return [*clusters, *examples]


def split_assigner(
    *, options: ExportOptions, cases: QuerySet[Case], groups: list[CodeGroup], near_duplicates: NearDuplicateOutcome
) -> SplitAssigner:
    kept = kept_together_sets(options=options, cases=cases, near_duplicates=near_duplicates)
    case_codes = exported_case_codes(cases=cases, case_ids=(case_id for linked in kept for case_id in linked))
    return SplitAssigner(plan=options.split, codes=groups, kept_together=kept, case_codes=case_codes)


@dataclass(frozen=True)
class _Written:
    rows: int
    stats: CardStats
    data_files: dict[str, str]
    near_duplicates: NearDuplicateOutcome


def _write_rows(*, options: ExportOptions, folder: Path, progress: Progress | None) -> _Written:
    cases, near_duplicates = near_duplicates_policy_apply(
        cases=approved_pairs(filters=options.filters), policy=options.near_duplicates
    )
    groups = code_groups(cases=cases)
    total = sum(group.count for group in groups)
    assigner = split_assigner(options=options, cases=cases, groups=groups, near_duplicates=near_duplicates)
    data_files = {split: f"data/{split}.{options.fmt}" for split in options.split.split_names}
    (folder / "data").mkdir(parents=True, exist_ok=True)
    writers: dict[str, RowWriter] = {}
    stats = CardStats(group_merge=assigner.merge)
    done, position, current_code = 0, 0, ""
    if progress:
        progress(0, total)
    try:
        for split, relative in data_files.items():
            writers[split] = row_writer(
                fmt=options.fmt,
                path=folder / relative,
                profile=options.profile,
                original_header=options.original_header,
            )
        for record in pair_records(cases=cases, groups=groups):
            code = record.code.code
            position = position + 1 if code == current_code else 0
            current_code = code
            split = assigner.split_for(code, position)
            writers[split].write(profile_row(record, profile=options.profile, original_header=options.original_header))
            stats.add(record, split=split)
            done += 1
            if progress and done % PROGRESS_EVERY == 0:
                progress(done, total)
    finally:
        for writer in writers.values():
            writer.close()
    return _Written(rows=done, stats=stats, data_files=data_files, near_duplicates=near_duplicates)


def _zip_folder(folder: Path, out: Path) -> None:
    """Zip with sorted entries and a fixed timestamp, copying in blocks."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with path.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)


def dataset_export_write(*, options: ExportOptions, out: Path, progress: Progress | None = None) -> ExportResult:
    """Write the bundle to `out`: a folder, or a zip when `out` ends with .zip."""
    out = Path(out)
    zipped = out.suffix.lower() == ".zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent)) if zipped else out
    try:
        written = _write_rows(options=options, folder=folder, progress=progress)
        rows, data_files = written.rows, written.data_files
        card = card_markdown(
            stats=written.stats,
            options=options.to_params(),
            data_files=data_files,
            near_duplicates=written.near_duplicates,
        )
        (folder / "README.md").write_text(card, encoding="utf-8")
        if zipped:
            _zip_folder(folder, out)
    finally:
        if zipped:
            shutil.rmtree(folder, ignore_errors=True)
    if progress:
        progress(rows, rows)
    return ExportResult(rows=rows, path=out, data_files=data_files)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_export_request(*, user: User | None, options: ExportOptions) -> DatasetExport:
    """Record an export and queue its job once the row is committed."""
    from review.tasks import dataset_export_run  # the task module imports this one

    export = DatasetExport.objects.create(created_by=user, params=options.to_params())
    transaction.on_commit(lambda: dataset_export_run.delay(export.pk))
    return export


def _export_update(export: DatasetExport, **values: Any) -> None:
    for name, value in values.items():
        setattr(export, name, value)
    export.updated_at = timezone.now()
    DatasetExport.objects.filter(pk=export.pk).update(**values, updated_at=export.updated_at)


def dataset_export_job_run(*, export_id: int) -> DatasetExport:
    """Run a queued export into EXPORT_DIR; a redelivered job that already succeeded is a no-op."""
    export = DatasetExport.objects.get(pk=export_id)
    if export.status == JobStatus.SUCCEEDED:
        return export
    _export_update(export, status=JobStatus.RUNNING, error="", rows_done=0)
    path = Path(settings.EXPORT_DIR) / f"medsynth-export-{export.pk}.zip"

    def progress(done: int, total: int) -> None:
        _export_update(export, rows_done=done, rows_total=total)

    try:
        result = dataset_export_write(options=ExportOptions.from_params(export.params), out=path, progress=progress)
    except Exception as error:
        logger.exception("dataset export %s failed", export.pk)
        _export_update(
            export, status=JobStatus.FAILED, error=str(error) or type(error).__name__, finished_at=timezone.now()
        )
        return export
    _export_update(
        export,
        status=JobStatus.SUCCEEDED,
        rows_done=result.rows,
        rows_total=result.rows,
        file_path=str(path),
        sha256=file_sha256(path),
        finished_at=timezone.now(),
    )
    return export
