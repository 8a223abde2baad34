"""One streaming writer per format. Each takes rows one at a time and holds at most
one Parquet row group in memory; nothing in a data file depends on the clock."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from medsynth_site.csv_cells import csv_safe_row
from review.datasets.export.profiles import columns, flattened, parquet_schema

FORMATS = ("jsonl", "csv", "parquet")
PARQUET_ROW_GROUP = 1000


class RowWriter(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="\n")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()


class CsvWriter:
    def __init__(self, path: Path, *, profile: str, original_header: bool) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._profile = profile
        self._writer = csv.DictWriter(self._file, fieldnames=columns(profile=profile, original_header=original_header))
        self._writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow(csv_safe_row(flattened(row, keep_lists=False) if self._profile == "full" else row))

    def close(self) -> None:
        self._file.close()


class ParquetWriter:
    """Rows are buffered into row groups of PARQUET_ROW_GROUP, then written and dropped."""

    def __init__(self, path: Path, *, profile: str, original_header: bool) -> None:
        self._schema = parquet_schema(profile=profile, original_header=original_header)
        self._writer = pq.ParquetWriter(path, self._schema, compression="zstd")
        self._profile = profile
        self._buffer: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
        self._buffer.append(flattened(row, keep_lists=True) if self._profile == "full" else row)
        if len(self._buffer) >= PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self._schema))
            self._buffer = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def row_writer(*, fmt: str, path: Path, profile: str, original_header: bool) -> RowWriter:
    if fmt == "jsonl":
        return JsonlWriter(path)
    if fmt == "csv":
        return CsvWriter(path, profile=profile, original_header=original_header)
    if fmt == "parquet":
        return ParquetWriter(path, profile=profile, original_header=original_header)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
