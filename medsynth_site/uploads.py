"""Uploads go to a temporary file as they arrive and stop at IMPORT_MAX_BYTES.

Django's default handlers accept a file of any size and leave the size check to the view,
after the whole body has been received (and, for a small file, held in memory). This one
writes every upload to disk in chunks and refuses it as soon as it is known to be too
large: when the request announces a larger body, before a byte of the file is read, or
when the bytes received pass the limit. Reading stops there (the connection is reset
rather than drained), and the view shows `upload_refusal(request)`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

_REFUSAL_ATTRIBUTE = "_medsynth_upload_refusal"


def upload_refusal(request: HttpRequest) -> str:
    """Why an upload of this request was refused ("" when none was): read it after
    request.POST or request.FILES has been parsed."""
    return str(getattr(request, _REFUSAL_ATTRIBUTE, ""))


def upload_limit_message(limit: int) -> str:
    return f"The file is larger than {limit:,} bytes, the most this site accepts (IMPORT_MAX_BYTES); nothing was saved."


def read_whole_size_validate(upload: UploadedFile) -> None:
    """A form-field validator for a file that its view reads whole (the admin imports): at most
    ADMIN_IMPORT_MAX_BYTES, a smaller limit than the streamed dataset import's."""
    limit = settings.ADMIN_IMPORT_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise ValidationError(
            f"The file is {upload.size:,} bytes; an admin import is read whole, so it may be at most {limit:,} "
            "bytes (ADMIN_IMPORT_MAX_BYTES). Nothing was imported."
        )


class BoundedUploadHandler(TemporaryFileUploadHandler):
    """A temporary-file upload handler that stops at settings.IMPORT_MAX_BYTES."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit: int = settings.IMPORT_MAX_BYTES
        self.body_length: int | None = None

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],  # noqa: N803 - Django's parameter name
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        self.body_length = content_length

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        # The form's other fields (the CSRF token first) fit in DATA_UPLOAD_MAX_MEMORY_SIZE: a
        # body announced larger than both together holds a file over the limit.
        room = self.limit + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if self.body_length is not None and self.body_length > room:
            self._refuse()
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > self.limit:
            self._refuse()
        return super().receive_data_chunk(raw_data, start)

    def _refuse(self) -> None:
        if self.request is not None:
            setattr(self.request, _REFUSAL_ATTRIBUTE, upload_limit_message(self.limit))
        raise StopUpload(connection_reset=True)
