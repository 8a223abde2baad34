"""Dataset import and export scale by chunks: the importer reads a chunk of rows only after
storing the one before, and the SQL statements of an import (per chunk) and of an export (per
page of pairs) do not grow with the number of rows."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import BatchKind, Case
from generation.services import batches
from generation.services.near_duplicates import near_duplicates_index
from review.datasets.export import ExportOptions, dataset_export_write
from review.datasets.imports import service as import_service
from review.datasets.imports.service import dataset_import_file
from review.datasets.splits import SplitPlan
from tests.factories import IcdCodeFactory, approved_pair_create

pytestmark = pytest.mark.django_db

CHUNK = 3
CODES = ("R05.9", "L25.9", "J06.9")
WORDS = [
    "cough",
    "fever",
    "rash",
    "pain",
    "knee",
    "back",
    "chest",
    "nausea",
    "fatigue",
    "dizzy",
    "swelling",
    "wheeze",
    "morning",
    "night",
    "meals",
    "walking",
    "stairs",
    "tablet",
    "dose",
    "daily",
    "weekly",
    "glucose",
    "pressure",
    "labs",
    "imaging",
    "referral",
    "clinic",
    "mother",
    "father",
]


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch, settings):
    monkeypatch.setattr(batches, "WRITE_CHUNK", CHUNK)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def codes():
    return [IcdCodeFactory(code=code) for code in CODES]


def medsynth_csv(path: Path, rows: int, *, first: int = 0) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Note", "Dialogue", "ICD10", "ICD10_desc"])
        for number in range(first, first + rows):
            words = random.Random(number).sample(WORDS, 12)  # no two rows are near-duplicates
            note = f"SUBJECTIVE:\n{' '.join(words[:6])}.\n\nPLAN:\n{' '.join(words[6:])}."
            dialogue = f"[doctor]: {' '.join(words[::2])}?\n[patient]: {' '.join(words[1::2])}."
            writer.writerow([note, dialogue, CODES[number % len(CODES)], ""])
    return path


def imported_cases() -> int:
    return Case.objects.filter(batch__kind=BatchKind.IMPORTED).count()


def test_the_importer_reads_a_chunk_of_rows_only_once_the_chunk_before_is_stored(codes, tmp_path, monkeypatch):
    path = medsynth_csv(tmp_path / "pairs.csv", 2 * CHUNK + 1)
    stored_when_read: list[int] = []
    real_rows = import_service.rows_accepted

    def watched_rows(**kwargs):
        for row in real_rows(**kwargs):
            stored_when_read.append(imported_cases())
            yield row

    monkeypatch.setattr(import_service, "rows_accepted", watched_rows)

    dataset_import_file(path=path, fmt="medsynth")

    assert stored_when_read == [0] * CHUNK + [CHUNK] * CHUNK + [2 * CHUNK]
    assert imported_cases() == 2 * CHUNK + 1


def import_queries(tmp_path: Path, rows: int, *, first: int) -> int:
    """The statements of one import of `rows` rows, the near-duplicate index of each chunk included."""
    path = medsynth_csv(tmp_path / f"pairs-{first}.csv", rows, first=first)
    with CaptureQueriesContext(connection) as queries:
        dataset_import_file(path=path, fmt="medsynth")
    return len(queries)


@pytest.fixture
def on_commit_at_once(monkeypatch):
    """Index each chunk for near-duplicates as soon as it is written: the test's own transaction
    would otherwise hold the indexing back, and its statements would not be counted."""
    monkeypatch.setattr(
        "generation.services.cases.near_duplicates_index_on_commit",
        lambda *, case_ids: near_duplicates_index(case_ids=case_ids),
    )


def test_import_statements_grow_by_a_fixed_number_per_chunk_not_per_row(codes, tmp_path, on_commit_at_once):
    one_row = import_queries(tmp_path, 1, first=0)
    one_chunk = import_queries(tmp_path, CHUNK, first=100)
    two_chunks = import_queries(tmp_path, 2 * CHUNK, first=200)
    three_chunks = import_queries(tmp_path, 3 * CHUNK, first=300)

    assert one_row == one_chunk
    assert three_chunks - two_chunks == two_chunks - one_chunk > 0


def export_queries(tmp_path: Path, name: str) -> int:
    options = ExportOptions(fmt="jsonl", profile="full", split=SplitPlan(mode="grouped", ratios=(0.8, 0.1, 0.1)))
    with CaptureQueriesContext(connection) as queries:
        result = dataset_export_write(options=options, out=tmp_path / name)
    assert result.rows == Case.objects.count()
    return len(queries)


def test_export_statements_do_not_grow_with_the_pairs(codes, tmp_path):
    for code in codes:
        approved_pair_create(code=code)
    few = export_queries(tmp_path, "few")
    for number in range(12):
        approved_pair_create(code=codes[number % len(codes)], reviewers=1 + number % 2)

    assert export_queries(tmp_path, "more") == few
