"""Dataset import: MedSynth CSV, ACI-Bench CSV or our own `full` JSONL into the review
queue, all or nothing unless only the valid rows are wanted."""

from review.dataset_import.parsing import dialogue_parse, note_parse
from review.dataset_import.readers import IMPORT_FORMATS, MAX_CELL_CHARS, ImportRefused, rows_read
from review.dataset_import.service import (
    ImportResult,
    dataset_import_file,
    dataset_import_job_run,
    dataset_import_request,
)

__all__ = [
    "IMPORT_FORMATS",
    "MAX_CELL_CHARS",
    "ImportRefused",
    "ImportResult",
    "dataset_import_file",
    "dataset_import_job_run",
    "dataset_import_request",
    "dialogue_parse",
    "note_parse",
    "rows_read",
]
