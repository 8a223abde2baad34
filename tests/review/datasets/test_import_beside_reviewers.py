"""A reviewer keeps saving while a 5,000-row import runs on the embedded database (SQLite,
one writer at a time): the import writes in short transactions, so no save waits more than
2 s, and none fails with "database is locked" (an import in one transaction held the write
lock for about a minute, past SQLite's 30 s busy timeout)."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.processes import ROOT, AppEnvironment

ROWS = 5_000

SETUP = """
import django; django.setup()
from generation.models import CaseStatus
from tests.factories import ClinicianFactory, IcdCodeFactory
from tests.review.review_fixtures import case_in_review
IcdCodeFactory(code="R05.9")
case = case_in_review(CaseStatus.PAIR_REVIEW)
print(case.pk, ClinicianFactory().username)
"""

IMPORTER = """
import sys, time, django; django.setup()
from pathlib import Path
from review.datasets.imports import dataset_import_file
Path(sys.argv[2]).touch()  # started
began = time.monotonic()
result = dataset_import_file(path=Path(sys.argv[1]), fmt="medsynth")
Path(sys.argv[3]).touch()  # done
print(result.rows_imported, round(time.monotonic() - began, 1))
"""

# Saves a note section again and again from the import's start to its end; prints how many
# saves it made, how many while the import was writing (its batch a draft), and the longest.
# An exception ("database is locked") ends it with a traceback.
REVIEWER = """
import sys, time, django; django.setup()
from pathlib import Path
from django.contrib.auth.models import User
from generation.models import BatchKind, BatchStatus, Case, GenerationBatch
from generation.selectors import current_version
from review import services
case, author = Case.objects.get(pk=int(sys.argv[1])), User.objects.get(username=sys.argv[2])
started, done = Path(sys.argv[3]), Path(sys.argv[4])
writing = GenerationBatch.objects.filter(kind=BatchKind.IMPORTED, status=BatchStatus.DRAFT)
give_up = time.monotonic() + 600
while not started.exists() and time.monotonic() < give_up:
    time.sleep(0.05)
saves = []
while not done.exists() and time.monotonic() < give_up:
    during_writes = writing.exists()
    base = current_version(case=case, kind="note").number
    began = time.monotonic()
    services.note_section_edit(case=case, author=author, section="plan", text=f"Save {base}.", base_number=base)
    saves.append((time.monotonic() - began, during_writes))
    time.sleep(0.1)
print(len(saves), sum(during for _took, during in saves), round(max(took for took, _during in saves), 3))
"""


def medsynth_csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([" Note", "Dialogue", "ICD10", "ICD10_desc"])
        for number in range(rows):
            note = f"SUBJECTIVE:\nCough for {number} days.\n\nOBJECTIVE:\nClear lungs.\n\nASSESSMENT:\nViral cough."
            writer.writerow(
                [note + "\n\nPLAN:\nFluids.", f"[doctor]: Since when?\n[patient]: {number} days.", "R059", ""]
            )
    return path


def python(app: AppEnvironment, code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        env=app.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_reviewer_saves_during_a_5000_row_import_without_waiting_on_it(tmp_path):
    app = AppEnvironment(data_dir=tmp_path)
    app.manage("migrate", "--verbosity", "0")
    case_id, username = app.run(sys.executable, "-c", textwrap.dedent(SETUP)).split()
    path = medsynth_csv(tmp_path / "pairs.csv", ROWS)

    started, done = tmp_path / "import-started", tmp_path / "import-done"

    reviewer = python(app, REVIEWER, case_id, username, str(started), str(done))
    importer = python(app, IMPORTER, str(path), str(started), str(done))
    imported, reviewed = importer.communicate(timeout=900), reviewer.communicate(timeout=900)

    assert importer.returncode == 0, imported[1][-3000:]
    assert reviewer.returncode == 0, reviewed[1][-3000:]
    rows, seconds = imported[0].split()
    saves, during_writes, longest = reviewed[0].split()
    assert int(rows) == ROWS
    print(f"import {seconds} s; {saves} saves, {during_writes} while it wrote; the longest {longest} s")
    assert float(longest) < 2.0, f"a reviewer's save took {longest} s beside the import"
    assert int(during_writes) >= 5, f"only {during_writes} of {saves} saves happened while the import wrote"
