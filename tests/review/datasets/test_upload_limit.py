"""Uploads are written to disk as they arrive and refused as soon as they pass
IMPORT_MAX_BYTES: not after the whole body has been received."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.core.handlers.wsgi import WSGIRequest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from medsynth_site.uploads import upload_refusal
from review.models import DatasetImport

LIMIT_MESSAGE = (
    "The file is larger than 100,000 bytes, the most this site accepts (IMPORT_MAX_BYTES); nothing was saved."
)


class CountingStream(io.BytesIO):
    """A request body that counts how much of it the server read."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def posted_upload(file_bytes: int) -> tuple[WSGIRequest, CountingStream, int]:
    """A multipart POST of the import form (the file last, as the page sends it) whose body
    is read only as far as the server asks."""
    body = encode_multipart(
        BOUNDARY,
        {"csrfmiddlewaretoken": "token", "fmt": "medsynth", "file": SimpleUploadedFile("big.csv", b"x" * file_bytes)},
    )
    stream = CountingStream(body)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": reverse("datasets:imports"),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "CONTENT_TYPE": MULTIPART_CONTENT,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": stream,
    }
    return WSGIRequest(environ), stream, len(body)


@pytest.fixture
def limit_100k(settings):
    settings.IMPORT_MAX_BYTES = 100_000


def test_an_upload_stops_being_read_once_it_passes_the_limit(limit_100k):
    request, stream, body_length = posted_upload(1_000_000)

    assert request.POST["fmt"] == "medsynth"  # the fields before the file arrived

    assert upload_refusal(request) == LIMIT_MESSAGE
    assert "file" not in request.FILES
    # Read up to the limit and one parser chunk (64 KiB) past it: not the rest of the megabyte.
    assert stream.bytes_read <= 100_000 + 2 * 65_536 < body_length


def test_an_upload_announced_larger_than_the_limit_is_refused_before_its_file_is_read(limit_100k, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000  # the room for the form's other fields

    request, stream, _body_length = posted_upload(1_000_000)

    assert "file" not in request.FILES
    assert upload_refusal(request) == LIMIT_MESSAGE
    assert stream.bytes_read <= 65_536  # the parser's first chunk only


def test_an_upload_within_the_limit_is_written_to_disk_as_it_arrives(limit_100k):
    request, stream, body_length = posted_upload(90_000)

    upload = request.FILES["file"]

    assert upload_refusal(request) == ""
    assert isinstance(upload, TemporaryUploadedFile)  # on disk, not held in memory
    assert upload.size == 90_000
    assert stream.bytes_read == body_length


@pytest.mark.django_db
def test_the_import_page_refuses_an_over_large_file_with_a_message(limit_100k, admin_member_client):
    upload = io.BytesIO(b"Note,Dialogue,ICD10\n" + b"x" * 200_000)
    upload.name = "huge.csv"

    response = admin_member_client.post(reverse("datasets:imports"), {"file": upload, "fmt": "medsynth"}, follow=True)

    assert LIMIT_MESSAGE in response.content.decode()
    assert not DatasetImport.objects.exists()
