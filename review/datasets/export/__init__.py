"""Dataset export: approved pairs only, streamed to JSONL, CSV or Parquet with splits
and a dataset card. Import from here; the submodules are an implementation detail."""

from review.datasets.export.profiles import MEDSYNTH_COLUMNS, ORIGINAL_NOTE_HEADER, PROFILES
from review.datasets.export.query import ExportFilters, PairRecord, approved_pairs, pair_records
from review.datasets.export.service import (
    ExportOptionError,
    ExportOptions,
    ExportResult,
    dataset_export_job_run,
    dataset_export_request,
    dataset_export_write,
    file_sha256,
)
from review.datasets.export.writers import FORMATS

__all__ = [
    "FORMATS",
    "MEDSYNTH_COLUMNS",
    "ORIGINAL_NOTE_HEADER",
    "PROFILES",
    "ExportFilters",
    "ExportOptionError",
    "ExportOptions",
    "ExportResult",
    "PairRecord",
    "approved_pairs",
    "dataset_export_job_run",
    "dataset_export_request",
    "dataset_export_write",
    "file_sha256",
    "pair_records",
]
