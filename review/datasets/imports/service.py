"""Importing existing dialogue-note pairs into the review queue.

Rows become cases of a new imported batch, waiting for the final pair review, with
IMPORTED versions that keep the original text verbatim and the parsed content beside
it. All or nothing by default (refused on any row problem); `valid_only` imports the
good rows and reports the others.

The file is validated in full before anything is written, then written in short
transactions (generation.services.batches.imported_batch_create), so a reviewer's save
never waits behind a whole import. If writing fails part way, the job fails and the
partial batch is cancelled: none of it reaches review.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from generation.models import GenerationBatch, PhysicianRole
from generation.models.text_limits import BATCH_NAME_MAX_CHARS
from generation.services.batches import ImportedPair, ImportedText, ImportInterrupted, imported_batch_create
from review.datasets.imports.parsing import Parsed
from review.datasets.imports.readers import CodePolicy, ImportRefused, ImportRow, file_validate, rows_accepted
from review.models import DatasetImport, JobStatus

logger = logging.getLogger(__name__)


@dataclass
class ImportResult:
    batch: GenerationBatch
    rows_total: int
    rows_imported: int
    report: list[dict[str, Any]] = field(default_factory=list)


def _imported_text(parsed: Parsed, text: str) -> ImportedText:
    return ImportedText(text=text, content=parsed.content, flags=parsed.flags)


def _imported_pair(row: ImportRow, roles: dict[str, PhysicianRole]) -> ImportedPair:
    return ImportedPair(
        code=row.code,
        note=_imported_text(row.note, row.note_text),
        dialogue=_imported_text(row.dialogue, row.dialogue_text),
        role=roles.get(row.role.lower()),
        scenario=row.scenario,
    )


def dataset_import_file(
    *,
    path: Path,
    fmt: str,
    valid_only: bool = False,
    default_code: str = "",
    code_to_be_assigned: bool = False,
    batch_name: str = "",
    user: User | None = None,
) -> ImportResult:
    """Import the file's pairs; raises ImportRefused (nothing written) when it cannot, and
    ImportInterrupted (the partial batch cancelled) when writing fails part way. With
    `code_to_be_assigned`, rows without a code (or with a retired one) are imported without
    one; the report warns of every non-billable or retired code (readers.CodePolicy)."""
    policy = CodePolicy.from_settings(default_code=default_code, to_be_assigned=code_to_be_assigned)
    validation = file_validate(path=path, fmt=fmt, policy=policy)
    if validation.report and not valid_only:
        raise ImportRefused(
            f"{len(validation.report)} problem(s) in {validation.total} row(s); nothing was imported. "
            "Fix the file, or import only the valid rows.",
            validation.full_report,
        )
    if not validation.accepted:
        raise ImportRefused("no row can be imported; nothing was written", validation.full_report)
    roles = {role.name.lower(): role for role in PhysicianRole.objects.all()}
    rows = rows_accepted(path=path, fmt=fmt, validation=validation, policy=policy)
    config = {"format": fmt, "file": path.name, "valid_only": valid_only, "code_to_be_assigned": code_to_be_assigned}
    batch = imported_batch_create(
        name=(batch_name or f"Import of {path.name}")[:BATCH_NAME_MAX_CHARS],
        pairs=(_imported_pair(row, roles) for row in rows),
        config={"import": config},
        created_by=user,
    )
    return ImportResult(
        batch=batch,
        rows_total=validation.total,
        rows_imported=len(validation.accepted),
        report=validation.full_report,
    )


def import_upload_dir() -> Path:
    folder = Path(settings.DATA_DIR) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dataset_import_request(
    *,
    user: User | None,
    file_name: str,
    chunks: Any,
    fmt: str,
    valid_only: bool,
    default_code: str,
    code_to_be_assigned: bool = False,
) -> DatasetImport:
    """Keep the uploaded file and queue its import once the row is committed."""
    from review.tasks import dataset_import_run  # the task module imports this one

    job = DatasetImport.objects.create(created_by=user, file_name=file_name[:255], format=fmt, valid_only=valid_only)
    with _upload_path(job).open("wb") as target:
        for chunk in chunks:
            target.write(chunk)
    # DatasetImport has no options field; the options it lacks travel beside the file.
    options = {"default_code": default_code, "code_to_be_assigned": code_to_be_assigned}
    _options_path(job).write_text(json.dumps(options), encoding="utf-8")
    transaction.on_commit(lambda: dataset_import_run.delay(job.pk))
    return job


def _upload_path(job: DatasetImport) -> Path:
    suffix = Path(job.file_name).suffix[:10] or ".dat"
    return import_upload_dir() / f"import-{job.pk}{suffix}"


def _options_path(job: DatasetImport) -> Path:
    return import_upload_dir() / f"import-{job.pk}.options.json"


def _code_options(job: DatasetImport) -> dict[str, Any]:
    path = _options_path(job)
    options = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return {
        "default_code": str(options.get("default_code") or ""),
        "code_to_be_assigned": bool(options.get("code_to_be_assigned")),
    }


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
            **_code_options(job),
            batch_name=f"Import of {job.file_name}",
            user=job.created_by,
        )
    except ImportRefused as refused:
        return _job_finish(job, status=JobStatus.FAILED, error=refused.message, report=refused.report)
    except ImportInterrupted as interrupted:
        return _job_finish(job, status=JobStatus.FAILED, error=str(interrupted), batch=interrupted.batch, report=[])
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
