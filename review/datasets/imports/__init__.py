"""Dataset import: MedSynth CSV, ACI-Bench CSV or our own `full` JSONL into the review
queue, all or nothing unless only the valid rows are wanted."""

from review.datasets.imports.parsing import dialogue_parse, note_parse
from review.datasets.imports.readers import (
    IMPORT_FORMATS,
    MAX_CELL_CHARS,
    ImportRefused,
    Validation,
    file_validate,
    rows_accepted,
)
from review.datasets.imports.service import (
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
    "Validation",
    "dataset_import_file",
    "dataset_import_job_run",
    "dataset_import_request",
    "dialogue_parse",
    "file_validate",
    "note_parse",
    "rows_accepted",
]
