"""Importing existing dialogue-note pairs into the review queue.

Rows become cases of a new imported batch, waiting for the final pair review, with
IMPORTED versions that keep the original text verbatim and the parsed content beside
it. All or nothing by default (one transaction, refused on any row problem);
`valid_only` imports the good rows and reports the others.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from generation import rendering
from generation.checks import version_check_flags
from generation.models import (
    ArtefactKind,
    BatchKind,
    BatchStatus,
    Case,
    CaseStatus,
    GenerationBatch,
    PhysicianRole,
    VersionSource,
)
from generation.services.cases import artefact_version_create
from review.dataset_import.readers import ImportRefused, ImportRow, rows_read
from review.models import DatasetImport, JobStatus

logger = logging.getLogger(__name__)


@dataclass
class ImportResult:
    batch: GenerationBatch
    rows_total: int
    rows_imported: int
    report: list[dict[str, Any]] = field(default_factory=list)


def _row_case_create(*, batch: GenerationBatch, row: ImportRow, slot: int, roles: dict[str, PhysicianRole]) -> Case:
    case = Case.objects.create(
        batch=batch,
        code=row.code,
        slot=slot,
        role=roles.get(row.role.lower()),
        status=CaseStatus.PAIR_REVIEW,
        reviews_required=batch.reviews_required,
    )
    if row.scenario:
        artefact_version_create(
            case=case,
            kind=ArtefactKind.SCENARIO,
            content=row.scenario,
            source=VersionSource.IMPORTED,
            text=rendering.scenario_text(row.scenario),
        )
    note_content = row.note.content
    for kind, parsed, text in (
        (ArtefactKind.NOTE, row.note, row.note_text),
        (ArtefactKind.DIALOGUE, row.dialogue, row.dialogue_text),
    ):
        checks = version_check_flags(kind=kind, content=parsed.content, text=text, note_content=note_content)
        artefact_version_create(
            case=case,
            kind=kind,
            content=parsed.content,
            source=VersionSource.IMPORTED,
            text=text,
            check_flags=parsed.flags + checks,
        )
    return case


def dataset_import_file(
    *,
    path: Path,
    fmt: str,
    valid_only: bool = False,
    default_code: str = "",
    batch_name: str = "",
    user: User | None = None,
) -> ImportResult:
    """Import the file's pairs; raises ImportRefused (nothing written) when it cannot."""
    read = rows_read(path=path, fmt=fmt, default_code=default_code)
    if read.report and not valid_only:
        raise ImportRefused(
            f"{len(read.report)} problem(s) in {read.total} row(s); nothing was imported. "
            "Fix the file, or import only the valid rows.",
            read.report,
        )
    if not read.rows:
        raise ImportRefused("no row can be imported; nothing was written", read.report)
    roles = {role.name.lower(): role for role in PhysicianRole.objects.all()}
    slots: Counter[int] = Counter()
    with transaction.atomic():
        batch = GenerationBatch.objects.create(
            name=batch_name or f"Import of {path.name}",
            kind=BatchKind.IMPORTED,
            status=BatchStatus.COMPLETED,
            planned_count=len(read.rows),
            produced_count=len(read.rows),
            created_by=user,
            config={"import": {"format": fmt, "file": path.name, "valid_only": valid_only}},
        )
        for row in read.rows:
            slots[row.code.pk] += 1
            _row_case_create(batch=batch, row=row, slot=slots[row.code.pk], roles=roles)
    return ImportResult(batch=batch, rows_total=read.total, rows_imported=len(read.rows), report=read.report)


def import_upload_dir() -> Path:
    folder = Path(settings.DATA_DIR) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dataset_import_request(
    *, user: User | None, file_name: str, chunks: Any, fmt: str, valid_only: bool, default_code: str
) -> DatasetImport:
    """Keep the uploaded file and queue its import once the row is committed."""
    from review.tasks import dataset_import_run  # the task module imports this one

    job = DatasetImport.objects.create(created_by=user, file_name=file_name[:255], format=fmt, valid_only=valid_only)
    with _upload_path(job).open("wb") as target:
        for chunk in chunks:
            target.write(chunk)
    # DatasetImport has no options field; the one option it lacks travels beside the file.
    _options_path(job).write_text(json.dumps({"default_code": default_code}), encoding="utf-8")
    transaction.on_commit(lambda: dataset_import_run.delay(job.pk))
    return job


def _upload_path(job: DatasetImport) -> Path:
    suffix = Path(job.file_name).suffix[:10] or ".dat"
    return import_upload_dir() / f"import-{job.pk}{suffix}"


def _options_path(job: DatasetImport) -> Path:
    return import_upload_dir() / f"import-{job.pk}.options.json"


def _default_code(job: DatasetImport) -> str:
    path = _options_path(job)
    options = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return str(options.get("default_code") or "")


def dataset_import_job_run(*, import_id: int) -> DatasetImport:
    """Run a queued import; a redelivered job that already finished is a no-op."""
    job = DatasetImport.objects.get(pk=import_id)
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        return job
    DatasetImport.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, updated_at=timezone.now())
    try:
        result = dataset_import_file(
            path=_upload_path(job),
            fmt=job.format,
            valid_only=job.valid_only,
            default_code=_default_code(job),
            batch_name=f"Import of {job.file_name}",
            user=job.created_by,
        )
    except ImportRefused as refused:
        return _job_finish(job, status=JobStatus.FAILED, error=refused.message, report=refused.report)
    except Exception as error:
        logger.exception("dataset import %s failed", job.pk)
        return _job_finish(job, status=JobStatus.FAILED, error=str(error) or type(error).__name__, report=[])
    return _job_finish(
        job,
        status=JobStatus.SUCCEEDED,
        error="",
        batch=result.batch,
        rows_total=result.rows_total,
        rows_imported=result.rows_imported,
        report=result.report,
    )


def _job_finish(job: DatasetImport, **values: Any) -> DatasetImport:
    for name, value in values.items():
        setattr(job, name, value)
    job.save(update_fields=[*values, "updated_at"])
    return job
