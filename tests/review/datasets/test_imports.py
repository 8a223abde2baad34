from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation.models import ArtefactVersion, BatchKind, Case, CaseStatus, GenerationBatch, VersionSource
from generation.services.cases import artefact_version_create
from review.datasets.export import ExportOptions, dataset_export_write
from review.datasets.imports import MAX_CELL_CHARS, ImportRefused, dataset_import_file
from review.models import ReviewDecision
from tests.factories import SAMPLE_SCENARIO, ClinicianFactory, IcdCodeFactory, approved_pair_create

pytestmark = pytest.mark.django_db

# Look-alike rows written for these tests (not taken from any published dataset).
STYLED_NOTE = """### Medical Note
#####
**1. Subjective:**
- **Chief Complaint:** Itchy rash on both forearms for a week.
- Medications: none.

**2. Objective:**
- Vital Signs: T 36.8 C.
Erythematous papules on the forearms.

**3. Assessment:**
Contact dermatitis.

**4. Plan:**
Hydrocortisone 1% cream twice daily for 7 days.
"""
STYLED_DIALOGUE = """[doctor]: What brings you in?
[patient] This rash on my arms, it itches.
**Doctor:** Any new soaps?
[mother]: She started using a new detergent,
about a week ago.
"""
PLAIN_NOTE = "SUBJECTIVE:\nCough.\n\nOBJECTIVE:\nClear lungs.\n\nASSESSMENT:\nViral cough.\n\nPLAN:\nFluids."
PLAIN_DIALOGUE = "[doctor]: How long have you coughed?\n[patient]: Three days."


@pytest.fixture(autouse=True)
def _catalogue(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    IcdCodeFactory(code="L25.9", description="Unspecified contact dermatitis, unspecified cause")
    IcdCodeFactory(code="R05.9", description="Cough, unspecified")


def _csv(tmp_path: Path, header: list[str], rows: list[list[str]], *, name: str = "pairs.csv", delimiter=",") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _medsynth(tmp_path: Path, rows: list[list[str]], **kwargs) -> Path:
    return _csv(tmp_path, [" Note", "Dialogue", "ICD10", "ICD10_desc"], rows, **kwargs)


def _nothing_written() -> bool:
    return not (GenerationBatch.objects.exists() or Case.objects.exists() or ArtefactVersion.objects.exists())


def test_a_medsynth_file_becomes_an_imported_batch_waiting_for_pair_review(tmp_path):
    path = _medsynth(
        tmp_path,
        [
            [STYLED_NOTE, STYLED_DIALOGUE, "L259", "A description that is not the catalogue's"],
            [PLAIN_NOTE, PLAIN_DIALOGUE, "R05.9", "Cough"],
        ],
    )

    result = dataset_import_file(path=path, fmt="medsynth")

    assert (result.rows_imported, result.report) == (2, [])
    assert result.batch.kind == BatchKind.IMPORTED
    case = Case.objects.get(code__code="L25.9")
    assert case.status == CaseStatus.PAIR_REVIEW
    note = case.versions.get(kind="note")
    dialogue = case.versions.get(kind="dialogue")
    assert (note.source, dialogue.source) == (VersionSource.IMPORTED, VersionSource.IMPORTED)
    assert note.text == STYLED_NOTE
    assert dialogue.text == STYLED_DIALOGUE
    assert note.content["chief_complaint"] == "Itchy rash on both forearms for a week."
    assert note.content["plan"] == "Hydrocortisone 1% cream twice daily for 7 days."
    assert [turn["speaker"] for turn in dialogue.content["turns"]] == ["doctor", "patient", "doctor", "mother"]
    assert dialogue.content["turns"][3]["text"] == "She started using a new detergent, about a week ago."


def test_what_cannot_be_parsed_is_flagged_and_the_text_kept(tmp_path):
    path = _medsynth(tmp_path, [["Free text without any heading.", "Just words, no speakers.", "R059", ""]])

    dataset_import_file(path=path, fmt="medsynth")

    note = ArtefactVersion.objects.get(kind="note")
    dialogue = ArtefactVersion.objects.get(kind="dialogue")
    assert note.text == "Free text without any heading."
    assert "unparsed" in [flag["code"] for flag in note.check_flags]
    assert "unparsed" in [flag["code"] for flag in dialogue.check_flags]


def test_an_aci_file_needs_a_code_for_its_rows(tmp_path):
    path = _csv(
        tmp_path,
        ["dataset", "encounter_id", "dialogue", "note"],
        [["virtassist", "D2N001", "[doctor] how long ? [patient] three days .", PLAIN_NOTE]],
    )

    with pytest.raises(ImportRefused, match="--code"):
        dataset_import_file(path=path, fmt="aci")
    assert _nothing_written()

    dataset_import_file(path=path, fmt="aci", default_code="R05.9")
    dialogue = ArtefactVersion.objects.get(kind="dialogue")
    assert [turn["speaker"] for turn in dialogue.content["turns"]] == ["doctor", "patient"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Dialogue,ICD10\nhello,R059\n", "missing column"),
        (b" Note;Dialogue;ICD10\nx;y;R059\n", "separated by semicolons"),
        ("Note,Dialogue,ICD10\nCaf\u00e9,y,R059\n".encode("latin-1"), "not UTF-8"),
        (b"", "empty"),
        (b"Note,Dialogue,ICD10\n", "no rows"),
    ],
)
def test_malformed_files_are_refused_with_nothing_written(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    with pytest.raises(ImportRefused, match=message):
        dataset_import_file(path=path, fmt="medsynth")
    assert _nothing_written()


def test_row_problems_refuse_the_whole_file_and_are_reported_by_line(tmp_path):
    path = _medsynth(
        tmp_path,
        [
            [PLAIN_NOTE, PLAIN_DIALOGUE, "R059", ""],
            ["", PLAIN_DIALOGUE + " again", "R059", ""],
            ["x" * (MAX_CELL_CHARS + 1), PLAIN_DIALOGUE, "R059", ""],
            [PLAIN_NOTE, PLAIN_DIALOGUE, "R059", ""],
            [PLAIN_NOTE + " other", PLAIN_DIALOGUE, "Q999", ""],
        ],
    )

    with pytest.raises(ImportRefused) as refused:
        dataset_import_file(path=path, fmt="medsynth")

    assert _nothing_written()
    problems = {(problem["column"], problem["problem"].split(" ")[0]) for problem in refused.value.report}
    assert ("note", "empty") in problems
    assert ("note", f"{MAX_CELL_CHARS + 1:,}") in problems
    assert ("", "duplicate") in problems
    assert ("code", "'Q999'") in problems
    duplicate = next(problem for problem in refused.value.report if problem["problem"].startswith("duplicate"))
    # Multi-line cells: the duplicate row starts on the line after the earlier rows end.
    assert duplicate["problem"] == "duplicate of line 2"
    assert (
        duplicate["line"]
        == path.read_text().count("\n") - PLAIN_NOTE.count("\n") * 2 - PLAIN_DIALOGUE.count("\n") * 2 - 1
    )


def test_valid_only_imports_the_good_rows_and_reports_the_rest(tmp_path):
    path = _medsynth(tmp_path, [[PLAIN_NOTE, PLAIN_DIALOGUE, "R059", ""], [PLAIN_NOTE, "", "R059", ""]])

    result = dataset_import_file(path=path, fmt="medsynth", valid_only=True)

    assert result.rows_imported == 1
    assert [(problem["column"], problem["problem"]) for problem in result.report] == [("dialogue", "empty")]
    assert Case.objects.count() == 1


def _approve_all(cases) -> None:
    for case in cases:
        ReviewDecision.objects.create(
            case=case,
            stage="pair",
            reviewer=ClinicianFactory(),
            action="approve",
            note_version=case.versions.get(kind="note"),
            dialogue_version=case.versions.get(kind="dialogue"),
        )
        Case.objects.filter(pk=case.pk).update(status=CaseStatus.APPROVED)


CONTENT_FIELDS = (
    "icd10",
    "icd10_desc",
    "chapter",
    "role",
    "scenario",
    "subjective",
    "objective",
    "assessment",
    "plan",
    "chief_complaint",
    "turns",
    "note_text",
    "dialogue_text",
)


def test_round_trip_full_export_import_export_gives_the_same_content(tmp_path):
    first_case = approved_pair_create(code=IcdCodeFactory(code="R05.9"), note_text="<b>kept</b> as written")
    artefact_version_create(case=first_case, kind="scenario", content=SAMPLE_SCENARIO, source=VersionSource.LLM_RAW)
    approved_pair_create(code=IcdCodeFactory(code="L25.9"))
    dataset_export_write(options=ExportOptions(profile="full"), out=tmp_path / "first")
    first = [json.loads(line) for line in (tmp_path / "first/data/train.jsonl").read_text().splitlines()]

    result = dataset_import_file(path=tmp_path / "first/data/train.jsonl", fmt="jsonl")
    Case.objects.exclude(batch=result.batch).update(status=CaseStatus.REJECTED)
    _approve_all(Case.objects.filter(batch=result.batch))
    dataset_export_write(options=ExportOptions(profile="full"), out=tmp_path / "second")
    second = [json.loads(line) for line in (tmp_path / "second/data/train.jsonl").read_text().splitlines()]

    assert len(second) == len(first) == 2
    assert [{key: row[key] for key in CONTENT_FIELDS} for row in second] == [
        {key: row[key] for key in CONTENT_FIELDS} for row in first
    ]
    assert second[1]["icd10"] == "R05.9"
    assert second[1]["note_text"] == "<b>kept</b> as written"
    assert second[1]["scenario"] == SAMPLE_SCENARIO


def test_the_command_writes_the_row_report_for_valid_only(tmp_path):
    path = _medsynth(
        tmp_path, [[PLAIN_NOTE, PLAIN_DIALOGUE, "R059", ""], [PLAIN_NOTE + " Other.", PLAIN_DIALOGUE, "Z99999", ""]]
    )
    out = io.StringIO()

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_dataset", str(path), "--format", "medsynth", stdout=out, stderr=io.StringIO())
    assert _nothing_written()
    call_command("import_dataset", str(path), "--format", "medsynth", "--valid-only", stdout=out)

    assert "Imported 1 of 2 row(s)" in out.getvalue()
    report = list(csv.DictReader((tmp_path / "pairs.csv.report.csv").open(encoding="utf-8")))
    assert report[0]["column"] == "code"
