"""Import files are read as streams: validating or importing a file never holds the whole
file (or all its rows) in memory."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import pytest

from review.datasets.imports import ImportRefused, dataset_import_file, file_validate, rows_accepted
from review.datasets.imports.readers import MAX_LINE_CHARS
from tests.factories import IcdCodeFactory

pytestmark = pytest.mark.django_db

ROWS = 3_000
NOTE_PADDING = "Lungs clear to auscultation bilaterally. " * 100  # about 4 KB per row


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    """About 12 MB of MedSynth CSV."""
    IcdCodeFactory(code="R05.9")
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([" Note", "Dialogue", "ICD10", "ICD10_desc"])
        for number in range(ROWS):
            note = f"SUBJECTIVE:\nCough for {number} days.\n\nOBJECTIVE:\n{NOTE_PADDING}\n\nPLAN:\nFluids."
            writer.writerow([note, f"[doctor]: How long?\n[patient]: {number} days.", "R05.9", ""])
    assert path.stat().st_size > 12_000_000
    return path


def peak_memory(action) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_validating_a_file_reads_it_as_a_stream(big_file):
    validation, peak = peak_memory(lambda: file_validate(path=big_file, fmt="medsynth"))

    assert (validation.total, validation.report, len(validation.accepted)) == (ROWS, [], ROWS)
    assert peak < 4_000_000, f"validation held {peak:,} bytes for a {big_file.stat().st_size:,}-byte file"


def test_the_accepted_rows_are_parsed_one_at_a_time(big_file):
    validation = file_validate(path=big_file, fmt="medsynth")

    def read_all() -> int:
        last = None
        for last in rows_accepted(path=big_file, fmt="medsynth", validation=validation):  # noqa: B007
            pass
        return last.line if last else 0

    last_line, peak = peak_memory(read_all)

    assert last_line > ROWS  # multi-line cells: the last row starts far below line ROWS
    assert peak < 4_000_000, f"reading the rows held {peak:,} bytes"


def test_a_byte_that_is_not_utf8_deep_in_the_file_is_reported_with_its_line(tmp_path):
    IcdCodeFactory(code="R05.9")
    lines = [b"Note,Dialogue,ICD10\n"] + [f"note {n},dialogue {n},R05.9\n".encode() for n in range(1, 5_000)]
    lines[4_000] = b"note caf\xe9,dialogue,R05.9\n"  # latin-1, on line 4,001
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"".join(lines))
    offset = sum(len(line) for line in lines[:4_000]) + len(b"note caf")

    with pytest.raises(ImportRefused) as refused:
        dataset_import_file(path=path, fmt="medsynth")

    assert refused.value.message == f"line 4001: the file is not UTF-8 text (byte {offset}); save it as UTF-8"


def test_a_line_longer_than_any_row_refuses_the_file_without_reading_it_whole(tmp_path):
    path = tmp_path / "one-line.jsonl"
    path.write_text('{"icd10": "R05.9", "note_text": "' + "x" * (3 * MAX_LINE_CHARS) + '"}\n', encoding="utf-8")

    refused, peak = peak_memory(lambda: pytest.raises(ImportRefused, file_validate, path=path, fmt="jsonl"))

    assert refused.value.message.startswith(f"line 1: longer than {MAX_LINE_CHARS:,} characters")
    assert peak < 2 * 4 * MAX_LINE_CHARS  # one line's worth (4 bytes a character at most), not the file
