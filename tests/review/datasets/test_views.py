from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from medsynth_site.celery import app as celery_app
from review.models import DatasetExport, DatasetImport, JobStatus
from tests.factories import IcdCodeFactory, approved_pair_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_run_inline(settings, tmp_path):
    """Jobs run in the request's process once the transaction commits, files go to a temp folder."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.DATA_DIR = tmp_path
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def test_clinicians_cannot_open_the_export_or_import_pages(clinician_client):
    assert clinician_client.get(reverse("datasets:exports")).status_code == 403
    assert clinician_client.get(reverse("datasets:imports")).status_code == 403


def test_an_admin_exports_in_the_background_and_downloads_the_bundle(
    admin_member_client, django_capture_on_commit_callbacks
):
    approved_pair_create(note_text="<script>alert('note')</script>")
    form = {
        "fmt": "jsonl",
        "profile": "medsynth",
        "split": "none",
        "ratios": "0.8,0.1,0.1",
        "seed": "0",
        "licence": "cc-by-4.0",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_member_client.post(reverse("datasets:exports"), form)

    export = DatasetExport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:export_detail", args=[export.pk])
    page = admin_member_client.get(response["Location"]).content.decode()
    assert "Download the bundle" in page
    download = admin_member_client.get(reverse("datasets:export_download", args=[export.pk]))
    bundle = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert "<script>alert('note')</script>" in bundle.read("data/train.jsonl").decode().replace("\\u0027", "'")
    assert "license: cc-by-4.0" in bundle.read("README.md").decode()


def test_invalid_export_options_are_shown_on_the_form(admin_member_client):
    form = {
        "fmt": "csv",
        "profile": "full",
        "original_header": "on",
        "split": "none",
        "ratios": "1,1",
        "seed": "0",
        "licence": "other",
    }

    response = admin_member_client.post(reverse("datasets:exports"), form)

    assert response.status_code == 200
    assert "three split ratios" in response.content.decode()
    assert not DatasetExport.objects.exists()


def test_the_progress_partial_polls_until_the_export_finishes(admin_member_client):
    export = DatasetExport.objects.create(
        params={"format": "jsonl", "profile": "medsynth"}, rows_total=10, rows_done=4, status=JobStatus.RUNNING
    )
    url = reverse("datasets:export_detail", args=[export.pk])

    running = admin_member_client.get(url, headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 1s"' in running.content.decode()
    assert "<html" not in running.content.decode()
    assert 'aria-valuenow="40"' in running.content.decode()

    DatasetExport.objects.filter(pk=export.pk).update(status=JobStatus.FAILED, error="<b>disk full</b>")
    finished = admin_member_client.get(url, headers={"HX-Request": "true"})
    assert finished.status_code == 286  # htmx stops polling
    assert "hx-trigger" not in finished.content.decode()
    assert "&lt;b&gt;disk full&lt;/b&gt;" in finished.content.decode()


def test_an_admin_imports_a_file_and_sees_the_report_escaped(admin_member_client, django_capture_on_commit_callbacks):
    IcdCodeFactory(code="R05.9")
    content = (
        "Note,Dialogue,ICD10\n"
        '"SUBJECTIVE:\nCough.","[doctor]: Since when?\n[patient]: Monday.",R059\n'
        '"PLAN:\nRest.","[doctor]: Rest.",<script>alert(1)</script>\n'
    )
    upload = io.BytesIO(content.encode())
    upload.name = "pairs.csv"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_member_client.post(
            reverse("datasets:imports"), {"file": upload, "fmt": "medsynth", "valid_only": "on"}
        )

    job = DatasetImport.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    assert job.rows_imported == 1
    page = admin_member_client.get(response["Location"]).content.decode()
    assert "Imported 1 of 2 row(s)" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page


def test_a_refused_import_says_why_and_writes_nothing(admin_member_client, django_capture_on_commit_callbacks):
    upload = io.BytesIO(b"Note;Dialogue;ICD10\nx;y;R059\n")
    upload.name = "semicolons.csv"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_member_client.post(reverse("datasets:imports"), {"file": upload, "fmt": "medsynth"})

    page = admin_member_client.get(response["Location"]).content.decode()
    assert "Nothing was imported" in page
    assert "separated by semicolons" in page
    assert DatasetImport.objects.get().batch is None
