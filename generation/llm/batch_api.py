"""The provider's Batch API (OpenAI's /v1/files and /v1/batches, also served by Azure OpenAI
and several OpenAI-compatible servers), through the same SDK client as realtime calls.

Each function is one request without retries and raises AttemptFailed like
send_chat_completion; whoever calls it (the provider-batch pass, which runs again on the next
beat) owns the retrying. The output and error files' lines are read into BatchLineResult, and
a line's completion into the same Reply a realtime request gives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from generation.llm.client import Reply, failures_translated, openai_client, reply_from_completion
from generation.models import LlmEndpoint

CHAT_COMPLETIONS_URL: Final = "/v1/chat/completions"
# The provider's statuses after which nothing changes any more.
PROVIDER_FINAL_STATUSES = frozenset({"completed", "expired", "failed", "cancelled"})
EXPIRED_ERROR_CODE = "batch_expired"
# How many pages of the provider's batch list a search for a lost submission reads (100 a page).
SEARCH_PAGES = 5


@dataclass(frozen=True)
class ProviderBatchState:
    """What the provider says about one batch."""

    id: str
    status: str
    input_file_id: str = ""
    output_file_id: str = ""
    error_file_id: str = ""
    completed: int = 0
    failed: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    errors: str = ""

    @property
    def finished(self) -> bool:
        return self.status in PROVIDER_FINAL_STATUSES


def _state(batch: Any) -> ProviderBatchState:
    counts = getattr(batch, "request_counts", None)
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    return ProviderBatchState(
        id=str(batch.id),
        status=str(batch.status),
        input_file_id=str(batch.input_file_id or ""),
        output_file_id=str(batch.output_file_id or ""),
        error_file_id=str(batch.error_file_id or ""),
        completed=int(getattr(counts, "completed", 0) or 0),
        failed=int(getattr(counts, "failed", 0) or 0),
        metadata={str(key): str(value) for key, value in (batch.metadata or {}).items()},
        errors="; ".join(f"{error.code}: {error.message}" for error in errors),
    )


def jsonl_lines(lines: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The input file: one chat-completions request per line, named by its custom_id."""
    rows = (
        json.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT_COMPLETIONS_URL, "body": body})
        for custom_id, body in lines
    )
    return ("\n".join(rows) + "\n").encode()


def file_upload(*, endpoint: LlmEndpoint, name: str, content: bytes) -> str:
    """Upload an input file for a batch; returns its file id."""
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=""):
        uploaded = client.files.create(file=(name, content, "application/jsonl"), purpose="batch")
        return str(uploaded.id)


def batch_create(
    *, endpoint: LlmEndpoint, input_file_id: str, completion_window: str, metadata: dict[str, str]
) -> ProviderBatchState:
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=""):
        created = client.batches.create(
            input_file_id=input_file_id,
            endpoint=CHAT_COMPLETIONS_URL,
            completion_window=completion_window,  # type: ignore[arg-type]
            metadata=metadata,
        )
        return _state(created)


def batch_retrieve(*, endpoint: LlmEndpoint, provider_batch_id: str) -> ProviderBatchState:
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=""):
        return _state(client.batches.retrieve(provider_batch_id))


def batch_cancel(*, endpoint: LlmEndpoint, provider_batch_id: str) -> ProviderBatchState:
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=""):
        return _state(client.batches.cancel(provider_batch_id))


def batch_find(*, endpoint: LlmEndpoint, key: str, value: str) -> ProviderBatchState | None:
    """The newest batches' one whose metadata has key=value: a submission that was created
    but whose id was never stored (its worker died in between)."""
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=""):
        page = client.batches.list(limit=100)
        for _ in range(SEARCH_PAGES):
            for batch in page.data:
                if (batch.metadata or {}).get(key) == value:
                    return _state(batch)
            if not page.has_next_page():
                return None
            page = page.get_next_page()
    return None


def file_text(*, endpoint: LlmEndpoint, file_id: str) -> str:
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=""):
        return client.files.content(file_id).text


@dataclass(frozen=True)
class BatchLineResult:
    """One line of an output or error file: a reply, or why there is none."""

    custom_id: str
    response: dict[str, Any] | None
    error: str = ""
    expired: bool = False

    @property
    def succeeded(self) -> bool:
        return not self.error


def _line_error(row: dict[str, Any]) -> tuple[str, bool]:
    """(why the line has no completion, whether it expired); ("", False) for a completion."""
    error = row.get("error")
    if error:
        code = str(error.get("code") or "") if isinstance(error, dict) else ""
        message = str(error.get("message") or error) if isinstance(error, dict) else str(error)
        return f"{code}: {message}" if code else message, code == EXPIRED_ERROR_CODE
    response = row.get("response") or {}
    status = int(response.get("status_code") or 0)
    if status != 200:
        body = response.get("body") or {}
        nested = body.get("error") if isinstance(body, dict) else None
        said = nested.get("message") if isinstance(nested, dict) else json.dumps(body)[:300]
        return f"The provider answered this line with HTTP {status}: {said}", False
    return "", False


def batch_lines(text: str) -> Iterator[BatchLineResult]:
    """The lines of an output or error file, in file order."""
    for raw in text.splitlines():
        if not raw.strip():
            continue
        row = json.loads(raw)
        error, expired = _line_error(row)
        yield BatchLineResult(
            custom_id=str(row.get("custom_id") or ""), response=row.get("response"), error=error, expired=expired
        )


class BatchLineUnreadable(Exception):
    """A line's body is not a chat completion with choices."""


def reply_from_line(response: dict[str, Any]) -> Reply:
    """A successful line's completion as the Reply a realtime request would have given."""
    try:
        completion = ChatCompletion.model_validate(response.get("body") or {})
    except ValidationError as error:
        raise BatchLineUnreadable(f"The line's body is not a chat completion: {error}") from error
    if not completion.choices:
        raise BatchLineUnreadable("The line's completion has no choices.")
    return reply_from_completion(completion, request_id=str(response.get("request_id") or ""), latency_ms=0)
