"""CSV cells a spreadsheet will not run as formulas.

OWASP's rule for CSV injection: a cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return is prefixed with an apostrophe, so Excel, LibreOffice and Google Sheets
show it as text. Every CSV this app writes goes through here: the dataset export, the
import row reports and the admin's exports. JSONL and Parquet keep the text verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tablib
from import_export.formats import base_formats

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: csv_safe(value) for key, value in row.items()}


def _safe_dataset(dataset: tablib.Dataset) -> tablib.Dataset:
    return tablib.Dataset(*[[csv_safe(cell) for cell in row] for row in dataset], headers=dataset.headers)


class SafeCSV(base_formats.CSV):  # type: ignore[misc]
    """django-import-export's CSV with every exported cell neutralised (its own
    IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only strips a leading '=')."""

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> Any:
        return super().export_data(_safe_dataset(dataset), **kwargs)


class SafeTSV(base_formats.TSV):  # type: ignore[misc]
    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> Any:
        return super().export_data(_safe_dataset(dataset), **kwargs)
