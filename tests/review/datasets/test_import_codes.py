"""Import and codes: a warning per row for a non-billable or retired code (or a refusal, by
setting), and files without codes imported with the code to be assigned."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from generation.models import Case, CaseStatus
from review.datasets.imports import ImportRefused, dataset_import_file
from tests.factories import IcdCodeFactory
from tests.synthetic_text import synthetic_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _catalogue(db):
    # M54.5 was split into M54.50 / M54.51 / M54.59 in 2021: in the catalogue, it is a header.
    IcdCodeFactory(code="M54.5", description="Low back pain", is_billable=False, depth=2)
    for code in ("M54.50", "M54.51", "M54.59"):
        IcdCodeFactory(code=code, description=f"Low back pain ({code})", depth=3)


def _csv(tmp_path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path = tmp_path / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _medsynth(tmp_path: Path, codes: list[str]) -> Path:
    rows = [[synthetic_text(2 * i), synthetic_text(2 * i + 1), code, ""] for i, code in enumerate(codes)]
    return _csv(tmp_path, [" Note", "Dialogue", "ICD10", "ICD10_desc"], rows)


def _aci(tmp_path: Path, rows: int) -> Path:
    return _csv(
        tmp_path, ["dialogue", "note"], [[synthetic_text(2 * i), synthetic_text(2 * i + 1)] for i in range(rows)]
    )


def test_a_non_billable_code_is_imported_with_a_warning_on_its_row(tmp_path):
    result = dataset_import_file(path=_medsynth(tmp_path, ["M54.50", "M545"]), fmt="medsynth")

    assert result.rows_imported == 2
    (warning,) = result.report
    assert (warning["line"], warning["column"], warning["severity"]) == (3, "code", "warning")
    assert warning["problem"].startswith("M54.5 is not billable")
    assert "M54.50, M54.51, M54.59" in warning["problem"]
    assert sorted(result.batch.cases.values_list("code__code", flat=True)) == ["M54.5", "M54.50"]


def test_the_setting_refuses_a_non_billable_code_instead(tmp_path, settings):
    settings.IMPORT_REFUSE_UNBILLABLE_CODES = True
    path = _medsynth(tmp_path, ["M54.50", "M545"])

    with pytest.raises(ImportRefused) as refused:
        dataset_import_file(path=path, fmt="medsynth")
    assert not Case.objects.exists()
    assert [(p["line"], p["column"]) for p in refused.value.report] == [(3, "code")]
    assert "severity" not in refused.value.report[0]

    result = dataset_import_file(path=path, fmt="medsynth", valid_only=True)
    assert list(result.batch.cases.values_list("code__code", flat=True)) == ["M54.50"]


def test_a_retired_code_is_refused_unless_the_import_assigns_codes_later(tmp_path):
    path = _medsynth(tmp_path, ["M54.50", "M54.9"])  # M54.9 is not in this catalogue

    with pytest.raises(ImportRefused) as refused:
        dataset_import_file(path=path, fmt="medsynth")
    assert "'M54.9' is not in the current ICD-10-CM catalogue" in refused.value.report[0]["problem"]

    result = dataset_import_file(path=path, fmt="medsynth", code_to_be_assigned=True)
    (warning,) = result.report
    assert warning["severity"] == "warning"
    assert "code to be assigned" in warning["problem"]
    assert sorted(result.batch.cases.values_list("code__code", flat=True), key=str) == ["M54.50", None]


def test_an_aci_file_without_codes_is_imported_with_the_code_to_be_assigned(tmp_path):
    path = _aci(tmp_path, rows=3)
    with pytest.raises(ImportRefused, match="code-to-be-assigned"):
        dataset_import_file(path=path, fmt="aci")

    result = dataset_import_file(path=path, fmt="aci", code_to_be_assigned=True)

    cases = list(result.batch.cases.order_by("id"))
    assert [(case.code, case.status, case.slot) for case in cases] == [
        (None, CaseStatus.PAIR_REVIEW, 1),
        (None, CaseStatus.PAIR_REVIEW, 2),
        (None, CaseStatus.PAIR_REVIEW, 3),
    ]
    assert result.report == []


def test_the_command_imports_with_the_code_to_be_assigned_and_reports_warnings(tmp_path):
    path = _csv(
        tmp_path,
        ["dialogue", "note", "code"],
        [[synthetic_text(1), synthetic_text(2), ""], [synthetic_text(3), synthetic_text(4), "M54.5"]],
    )
    out = io.StringIO()

    call_command("import_dataset", str(path), "--format", "aci", "--code-to-be-assigned", stdout=out)

    assert "0 problem(s) skipped, 1 warning(s)" in out.getvalue()
    report = list(csv.DictReader((tmp_path / "pairs.csv.report.csv").open(encoding="utf-8")))
    assert [(row["line"], row["severity"]) for row in report] == [("3", "warning")]
    assert sorted(Case.objects.values_list("code__code", flat=True), key=str) == ["M54.5", None]


def test_the_database_keeps_a_case_without_a_code_out_of_the_approved(tmp_path):
    result = dataset_import_file(path=_aci(tmp_path, rows=1), fmt="aci", code_to_be_assigned=True)
    case = result.batch.cases.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        Case.objects.filter(pk=case.pk).update(status=CaseStatus.APPROVED)


def test_the_import_page_option_travels_to_the_background_job(tmp_path, settings, django_capture_on_commit_callbacks):
    from review.datasets.imports import dataset_import_job_run, dataset_import_request

    settings.DATA_DIR = tmp_path
    path = _aci(tmp_path, rows=2)
    with django_capture_on_commit_callbacks(execute=False):
        job = dataset_import_request(
            user=None,
            file_name="aci.csv",
            chunks=[path.read_bytes()],
            fmt="aci",
            valid_only=False,
            default_code="",
            code_to_be_assigned=True,
        )

    job = dataset_import_job_run(import_id=job.pk)

    assert (job.status, job.rows_imported) == ("succeeded", 2)
    assert list(job.batch.cases.values_list("code", flat=True)) == [None, None]
