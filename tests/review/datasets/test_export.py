from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from generation.models import ArtefactKind, CaseStatus, VersionSource
from generation.services.cases import artefact_version_create
from review.datasets.export import (
    ExportFilters,
    ExportOptions,
    approved_pairs,
    dataset_export_job_run,
    dataset_export_write,
    pair_records,
)
from review.datasets.splits import SplitPlan
from review.models import DatasetExport, JobStatus, ReviewDecision
from tests.factories import (
    SAMPLE_DIALOGUE,
    SAMPLE_NOTE,
    CaseFactory,
    ClinicianFactory,
    GenerationBatchFactory,
    IcdCodeFactory,
    approved_pair_create,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every approved pair creates reviewer accounts; real hashing would dominate the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _export(tmp_path: Path, name: str = "out", **options) -> Path:
    out = tmp_path / name
    dataset_export_write(options=ExportOptions(**options), out=out)
    return out


def _approve_new_note(case, content: dict, **decision) -> None:
    """A reviewer edits the note and approves the pair with that edit."""
    edited = artefact_version_create(
        case=case, kind=ArtefactKind.NOTE, content=content, source=VersionSource.HUMAN_EDIT, author=ClinicianFactory()
    )
    ReviewDecision.objects.create(
        case=case,
        stage="pair",
        reviewer=ClinicianFactory(),
        action="edit",
        note_version=edited,
        dialogue_version=case.versions.get(kind="dialogue"),
        **decision,
    )


def test_only_the_approved_versions_are_exported(tmp_path):
    case = approved_pair_create()
    reviewer = ClinicianFactory()
    artefact_version_create(
        case=case,
        kind=ArtefactKind.NOTE,
        content={**SAMPLE_NOTE, "plan": "UNAPPROVED EDIT"},
        source=VersionSource.HUMAN_EDIT,
        author=reviewer,
    )
    pending = CaseFactory(status=CaseStatus.PAIR_REVIEW)
    artefact_version_create(case=pending, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.LLM_RAW)

    rows = _jsonl(_export(tmp_path) / "data" / "train.jsonl")

    assert len(rows) == 1
    assert "UNAPPROVED EDIT" not in rows[0]["Note"]
    assert rows[0]["Note"] == case.versions.get(kind="note", number=1).text


def test_the_latest_approving_decision_names_the_exported_versions(tmp_path):
    case = approved_pair_create()
    _approve_new_note(case, {**SAMPLE_NOTE, "plan": "Edited plan."}, is_adjudication=True)

    rows = _jsonl(_export(tmp_path, profile="full") / "data" / "train.jsonl")

    assert rows[0]["plan"] == "Edited plan."
    assert rows[0]["note_version"] == 2


def test_medsynth_profile_has_the_published_columns_and_can_write_the_original_header(tmp_path):
    approved_pair_create(
        code=IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications")
    )

    out = _export(tmp_path, fmt="csv", original_header=True)
    with (out / "data" / "train.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))

    assert rows[0] == [" Note", "Dialogue", "ICD10", "ICD10_desc"]
    assert rows[1][2:] == ["E119", "Type 2 diabetes mellitus without complications"]
    assert rows[1][1].startswith("[doctor]: Hi, what brings you in today?")


def test_html_looking_text_is_kept_verbatim_in_the_data(tmp_path):
    approved_pair_create(note_text="<script>alert('x')</script> & <b>bold</b>")

    rows = _jsonl(_export(tmp_path) / "data" / "train.jsonl")

    assert rows[0]["Note"] == "<script>alert('x')</script> & <b>bold</b>"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_same_options_on_same_data_give_identical_bytes(tmp_path, fmt):
    for index in range(6):
        approved_pair_create(code=IcdCodeFactory(code=f"J0{index}.1"))
    split = SplitPlan(mode="stratified", ratios=(0.5, 0.25, 0.25), seed=7)

    first = _export(tmp_path, "a.zip", fmt=fmt, profile="full", split=split)
    second = _export(tmp_path, "b.zip", fmt=fmt, profile="full", split=split)

    assert first.read_bytes() == second.read_bytes()
    assert set(zipfile.ZipFile(first).namelist()) == {
        "README.md",
        f"data/train.{fmt}",
        f"data/validation.{fmt}",
        f"data/test.{fmt}",
    }


def test_full_profile_parquet_has_sections_turns_and_provenance(tmp_path):
    case = approved_pair_create(reviewers=2, dissenters=1)
    _approve_new_note(case, {**SAMPLE_NOTE, "subjective": "[Patient Name] reports thirst."})

    table = pq.read_table(_export(tmp_path, fmt="parquet", profile="full") / "data" / "train.parquet")
    row = table.to_pylist()[0]

    assert row["case_id"] == case.pk
    assert row["icd10"] == case.code.code
    assert row["plan"] == SAMPLE_NOTE["plan"]
    assert row["turns"] == SAMPLE_DIALOGUE["turns"]
    # Agreement on the exported versions: the three earlier verdicts judged note v1, not v2.
    assert row["reviewer_agreement"] == 1.0
    assert [review["action"] for review in json.loads(row["reviews"])] == ["reject", "approve", "approve", "edit"]
    assert [flag["code"] for flag in json.loads(row["check_flags"])["note"]] == ["placeholder"]


def test_the_full_profile_exports_the_current_scenario_never_a_draft(tmp_path):
    case = approved_pair_create()
    artefact_version_create(case=case, kind=ArtefactKind.SCENARIO, content={"age": "54"}, source=VersionSource.LLM_RAW)
    # A refused, conflicting edit is kept as a draft: history, not the scenario.
    artefact_version_create(
        case=case,
        kind=ArtefactKind.SCENARIO,
        content={"age": "99"},
        source=VersionSource.HUMAN_DRAFT,
        author=ClinicianFactory(),
    )

    rows = _jsonl(_export(tmp_path, profile="full") / "data" / "train.jsonl")

    assert [row["scenario"] for row in rows] == [{"age": "54"}]


def _codes_in(out: Path, split: str) -> list[str]:
    return [row["icd10"] for row in _jsonl(out / "data" / f"{split}.jsonl")]


def test_grouped_split_never_puts_a_code_in_two_splits(tmp_path):
    for index in range(10):
        code = IcdCodeFactory(code=f"K{index:02d}.0")
        for _ in range(index % 3 + 1):
            approved_pair_create(code=code)

    out = _export(tmp_path, profile="full", split=SplitPlan(mode="grouped", ratios=(0.6, 0.2, 0.2), seed=3))
    by_split = {split: set(_codes_in(out, split)) for split in ("train", "validation", "test")}

    assert all(by_split.values())
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["validation"] & by_split["test"]
    assert sum(len(_codes_in(out, split)) for split in by_split) == 19


def test_stratified_split_spreads_each_code_over_the_splits(tmp_path):
    for code in (IcdCodeFactory(code="L01.0"), IcdCodeFactory(code="L02.0")):
        for _ in range(10):
            approved_pair_create(code=code)

    out = _export(tmp_path, profile="full", split=SplitPlan(mode="stratified", ratios=(0.8, 0.1, 0.1), seed=1))

    for split, expected in (("train", 8), ("validation", 1), ("test", 1)):
        codes = _codes_in(out, split)
        assert codes.count("L01.0") == expected
        assert codes.count("L02.0") == expected


def test_filters_are_honoured(tmp_path):
    batch = GenerationBatchFactory()
    in_batch = approved_pair_create(batch=batch, code=IcdCodeFactory(code="M01.0", chapter="13"))
    approved_pair_create(code=IcdCodeFactory(code="M02.0", chapter="13"), reviewers=1, dissenters=1)
    approved_pair_create(code=IcdCodeFactory(code="A01.0", chapter="1"))

    def exported(**filters) -> list[str]:
        out = _export(tmp_path, f"f{len(list(tmp_path.iterdir()))}", profile="full", filters=ExportFilters(**filters))
        return sorted(_codes_in(out, "train"))

    assert exported(batch_ids=(batch.pk,)) == [in_batch.code.code]
    assert exported(codes=("m020", "A01.0")) == ["A01.0", "M02.0"]
    assert exported(chapters=("13",)) == ["M01.0", "M02.0"]
    assert exported(min_agreement=1.0) == ["A01.0", "M01.0"]
    today = dt.datetime.now(tz=dt.UTC).date()
    assert exported(approved_from=today + dt.timedelta(days=1)) == []
    assert exported(approved_from=today - dt.timedelta(days=1), approved_to=today + dt.timedelta(days=1)) == [
        "A01.0",
        "M01.0",
        "M02.0",
    ]


def _card_table(card: str, title: str) -> dict[str, list[str]]:
    section = card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("|")][2:]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows}


def test_card_numbers_equal_the_exported_data(tmp_path):
    for index in range(7):
        code = IcdCodeFactory(code=f"N{index:02d}.0", chapter="14" if index % 2 else "21")
        for _ in range(index % 2 + 1):
            approved_pair_create(code=code, reviewers=1, dissenters=index % 3 == 0)

    out = _export(tmp_path, profile="full", split=SplitPlan(mode="grouped", ratios=(0.6, 0.2, 0.2), seed=5))
    card = (out / "README.md").read_text(encoding="utf-8")
    data = {split: _jsonl(out / "data" / f"{split}.jsonl") for split in ("train", "validation", "test")}
    every_row = [row for rows in data.values() for row in rows]

    counts = _card_table(card, "Counts")
    for split, rows in data.items():
        assert counts[split] == [str(len(rows)), str(len({row["icd10"] for row in rows}))]
    assert counts["all"] == [str(len(every_row)), str(len({row["icd10"] for row in every_row}))]
    chapters = _card_table(card, "Chapter coverage")
    for chapter in ("14", "21"):
        assert chapters[chapter][1] == str(sum(row["chapter"] == chapter for row in every_row))
    turns = _card_table(card, "Lengths")["Dialogue turns"]
    assert turns[0] == str(min(len(row["turns"]) for row in every_row))
    review = _card_table(card, "Review")
    assert review["Review decisions"] == [str(sum(len(row["reviews"]) for row in every_row))]
    assert review["Pairs with full agreement"] == [str(sum(row["reviewer_agreement"] == 1.0 for row in every_row))]
    assert re.search(r"^license: other$", card, re.MULTILINE)
    assert "not medical advice" in card


def test_the_background_job_records_progress_file_and_checksum(tmp_path, settings):
    settings.EXPORT_DIR = tmp_path
    approved_pair_create()
    export = DatasetExport.objects.create(params=ExportOptions(fmt="parquet").to_params())

    dataset_export_job_run(export_id=export.pk)

    export.refresh_from_db()
    assert export.status == JobStatus.SUCCEEDED
    assert (export.rows_done, export.rows_total) == (1, 1)
    assert hashlib.sha256(Path(export.file_path).read_bytes()).hexdigest() == export.sha256


def test_paging_returns_every_pair_once_in_code_then_case_order():
    big, small_a, small_b = IcdCodeFactory(code="P01.0"), IcdCodeFactory(code="P00.1"), IcdCodeFactory(code="P02.0")
    created = [approved_pair_create(code=code).pk for code in (big, small_a, big, small_b, big, big, big)]

    records = list(pair_records(cases=approved_pairs(filters=ExportFilters()), chunk_size=2))

    order = [(record.case.code.code, record.case.pk) for record in records]
    assert order == sorted(order)
    assert sorted(pk for _code, pk in order) == sorted(created)


def test_the_command_writes_the_same_bundle_as_the_service(tmp_path):
    for index in range(4):
        approved_pair_create(code=IcdCodeFactory(code=f"R1{index}.0", chapter="18"))
    stdout = io.StringIO()

    call_command(
        "export_dataset",
        "--format",
        "parquet",
        "--profile",
        "medsynth",
        "--split",
        "grouped",
        "--ratios",
        "50/25/25",
        "--seed",
        "2",
        "--chapters",
        "18",
        "--out",
        str(tmp_path / "cli.zip"),
        stdout=stdout,
    )
    options = ExportOptions(
        fmt="parquet",
        split=SplitPlan(mode="grouped", ratios=(0.5, 0.25, 0.25), seed=2),
        filters=ExportFilters(chapters=("18",)),
    )
    dataset_export_write(options=options, out=tmp_path / "service.zip")

    assert "Exported 4 pair(s)" in stdout.getvalue()
    assert (tmp_path / "cli.zip").read_bytes() == (tmp_path / "service.zip").read_bytes()


def test_the_command_rejects_impossible_options(tmp_path):
    with pytest.raises(CommandError, match="original ' Note' header"):
        call_command("export_dataset", "--profile", "full", "--original-header", "--out", str(tmp_path / "x"))
