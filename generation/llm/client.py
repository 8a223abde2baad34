"""The one place that talks to the openai SDK: build a client for an endpoint, send one chat
completion, and translate whatever happens into a Reply or an AttemptFailed.

The SDK never retries (max_retries=0): structured_completion owns the retry loop, so a call is
retried exactly once per policy, not by the SDK, the worker and Celery on top of each other."""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletion

from generation.models import CallErrorKind, LlmEndpoint

# A local server that needs no key still gets one: the SDK refuses to start without it.
PLACEHOLDER_API_KEY = "not-needed-for-local"  # noqa: S105 - not a secret
# Error messages go to the log and the UI; the whole body is kept on the AgentCall row.
MAX_PROVIDER_MESSAGE_CHARS = 600


def default_http_client(endpoint: LlmEndpoint) -> httpx.Client | None:
    """None lets the SDK build its own HTTP client with its defaults."""
    return None


HttpClientFactory = Callable[[LlmEndpoint], "httpx.Client | None"]
Sleep = Callable[[float], None]


@dataclass
class LlmHooks:
    """What tests replace: where HTTP requests go, and how the client pauses between retries."""

    http_client_factory: HttpClientFactory = default_http_client
    sleep: Sleep = time.sleep


hooks = LlmHooks()


@contextmanager
def _hook_replaced(name: str, value: object) -> Iterator[None]:
    previous = getattr(hooks, name)
    setattr(hooks, name, value)
    try:
        yield
    finally:
        setattr(hooks, name, previous)


def use_http_client_factory(factory: HttpClientFactory) -> AbstractContextManager[None]:
    """Route every call made inside the block through `factory`'s clients (see tests/llm_replay.py)."""
    return _hook_replaced("http_client_factory", factory)


def use_sleep(sleep: Sleep) -> AbstractContextManager[None]:
    """Replace the pause between retries and rate-limit waits (tests record instead of sleeping)."""
    return _hook_replaced("sleep", sleep)


def http_client_factory(endpoint: LlmEndpoint) -> httpx.Client | None:
    """The HTTP client the SDK should use for this endpoint (tests swap in a replaying transport)."""
    return hooks.http_client_factory(endpoint)


def _new_openai_client(endpoint: LlmEndpoint) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=endpoint.base_url or None,
        api_key=endpoint.api_key() or PLACEHOLDER_API_KEY,
        timeout=float(endpoint.timeout_seconds),
        max_retries=0,
        # The SDK is typed for httpx2 clients but accepts a plain httpx.Client as well (openai._httpx2).
        http_client=http_client_factory(endpoint),  # type: ignore[arg-type]
    )


# With the SDK's own HTTP client, one client per endpoint configuration and process keeps
# connections (and TLS sessions) alive between calls; the SDK's clients are thread-safe.
_shared_clients: dict[tuple[str, str, int], openai.OpenAI] = {}
_shared_clients_lock = threading.Lock()


@contextmanager
def openai_client(endpoint: LlmEndpoint) -> Iterator[openai.OpenAI]:
    if hooks.http_client_factory is not default_http_client:
        client = _new_openai_client(endpoint)
        try:
            yield client
        finally:
            client.close()
        return
    # The key is part of the identity so a rotated key takes effect at once; it stays in memory only.
    identity = (endpoint.base_url, endpoint.api_key() or "", endpoint.timeout_seconds)
    with _shared_clients_lock:
        if identity not in _shared_clients:
            _shared_clients[identity] = _new_openai_client(endpoint)
        shared = _shared_clients[identity]
    yield shared


@dataclass(frozen=True)
class Reply:
    """A completion the server returned (HTTP 200), before its content is validated."""

    content: str | None
    refusal: str | None
    finish_reason: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    request_id: str
    latency_ms: int


class AttemptFailed(Exception):
    """One request that got no completion. `transient` errors are worth retrying after a pause."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        transient: bool,
        body: str = "",
        retry_after: float | None = None,
        request_id: str = "",
        latency_ms: int = 0,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.transient = transient
        self.body = body
        self.retry_after = retry_after
        self.request_id = request_id
        self.latency_ms = latency_ms


def retry_after_seconds(headers: httpx.Headers | Any) -> float | None:
    """The server's requested pause: retry-after-ms (OpenAI), retry-after in seconds or as an HTTP date."""
    milliseconds: str | None = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value: str | None = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(tz=UTC)).total_seconds(), 0.0)


def _provider_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        nested = body.get("error", body)
        if isinstance(nested, dict) and nested.get("message"):
            return str(nested["message"])
        if isinstance(nested, str):
            return nested
    return error.response.text[:500]


def _error_code(error: openai.APIStatusError) -> str:
    body = error.body
    nested = body.get("error", body) if isinstance(body, dict) else None
    return str(nested.get("code") or "") if isinstance(nested, dict) else ""


def _looks_like_request_validation(said: str) -> bool:
    return "validation error" in said or "Input should be" in said


def _status_diagnosis(error: openai.APIStatusError, *, endpoint: LlmEndpoint, model: str) -> tuple[str, str, bool]:
    """(message, CallErrorKind, transient) for an HTTP error status."""
    status = error.status_code
    said = _provider_message(error)[:MAX_PROVIDER_MESSAGE_CHARS]
    where = f"Endpoint '{endpoint.name}'"
    if "response_format" in said and (status < 500 or _looks_like_request_validation(said)):
        # llama-cpp-python answers a response_format it does not know with a 500 carrying a validation error.
        message = (
            f"{where} rejected the response_format of structured output mode "
            f"'{endpoint.structured_output_mode}' ({status}); choose the mode this server supports "
            f"(llama-cpp-python: json_object_schema; others: json_object). The server said: {said}"
        )
        return message, CallErrorKind.BAD_REQUEST, False
    if status == 429 and _error_code(error) == "insufficient_quota":
        message = f"The account behind endpoint '{endpoint.name}' has no quota left (429): {said}"
        return message, CallErrorKind.RATE_LIMITED, False
    if status == 429:
        return f"{where} is rate limiting us (429): {said}", CallErrorKind.RATE_LIMITED, True
    if status == 408:
        return f"{where} timed out the request (408): {said}", CallErrorKind.TIMEOUT, True
    if status >= 500 or status == 409:
        return f"{where} had a server error ({status}): {said}", CallErrorKind.SERVER_ERROR, True
    if status == 404:
        message = f"Model '{model}' is not served by endpoint '{endpoint.name}' ({status}). The server said: {said}"
        return message, CallErrorKind.NOT_FOUND, False
    if status in (401, 403):
        key_source = f"the key in ${endpoint.api_key_env}" if endpoint.api_key_env else "the request without a key"
        return f"{where} refused {key_source} ({status}): {said}", CallErrorKind.AUTH, False
    return f"{where} rejected the request ({status}): {said}", CallErrorKind.BAD_REQUEST, False


def _status_failure(
    error: openai.APIStatusError, *, endpoint: LlmEndpoint, model: str, latency_ms: int
) -> AttemptFailed:
    message, kind, transient = _status_diagnosis(error, endpoint=endpoint, model=model)
    return AttemptFailed(
        message,
        kind=kind,
        transient=transient,
        body=error.response.text,
        retry_after=retry_after_seconds(error.response.headers) if transient else None,
        request_id=error.response.headers.get("x-request-id", "") or "",
        latency_ms=latency_ms,
    )


def _reply_from(raw: Any, *, latency_ms: int) -> Reply:
    completion = raw.parse()
    if not isinstance(completion, ChatCompletion):
        content_type = raw.headers.get("content-type", "no content type")
        raise AttemptFailed(
            f"The server answered with {content_type} instead of a chat completion; "
            "check the endpoint's base URL (OpenAI-compatible servers usually end in /v1).",
            kind=CallErrorKind.BAD_REQUEST,
            transient=False,
            body=raw.text[:10_000],
            latency_ms=latency_ms,
        )
    if not completion.choices:
        raise AttemptFailed(
            "The server returned a completion without choices.",
            kind=CallErrorKind.SERVER_ERROR,
            transient=True,
            body=raw.text,
            latency_ms=latency_ms,
        )
    return reply_from_completion(completion, request_id=raw.headers.get("x-request-id") or "", latency_ms=latency_ms)


def reply_from_completion(completion: ChatCompletion, *, request_id: str, latency_ms: int) -> Reply:
    """A completion with choices as a Reply: the one reading of a completion, whether it came
    back from a request or in a provider batch's output file. Cached tokens come from the
    usage's prompt_tokens_details."""
    choice = completion.choices[0]
    usage = completion.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return Reply(
        content=choice.message.content,
        refusal=getattr(choice.message, "refusal", None),
        finish_reason=str(choice.finish_reason or ""),
        input_tokens=usage.prompt_tokens if usage else 0,
        output_tokens=usage.completion_tokens if usage else 0,
        cached_input_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
        request_id=request_id or completion.id or "",
        latency_ms=latency_ms,
    )


def _unreachable_message(endpoint: LlmEndpoint, error: Exception) -> str:
    return f"Could not connect to endpoint '{endpoint.name}' at {endpoint.base_url or 'the default URL'}: {error}"


@contextmanager
def failures_translated(*, endpoint: LlmEndpoint, model: str) -> Iterator[Callable[[], int]]:
    """Turn the SDK's exceptions into AttemptFailed; yields a clock of milliseconds since the start."""
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        yield elapsed_ms
    except openai.APITimeoutError as error:
        message = f"Endpoint '{endpoint.name}' did not answer within {endpoint.timeout_seconds} s."
        raise AttemptFailed(message, kind=CallErrorKind.TIMEOUT, transient=True, latency_ms=elapsed_ms()) from error
    except openai.APIConnectionError as error:
        message = _unreachable_message(endpoint, error)
        raise AttemptFailed(message, kind=CallErrorKind.CONNECTION, transient=True, latency_ms=elapsed_ms()) from error
    except openai.APIStatusError as error:
        raise _status_failure(error, endpoint=endpoint, model=model, latency_ms=elapsed_ms()) from error
    except openai.APIResponseValidationError as error:
        message = f"Endpoint '{endpoint.name}' returned a response that is not a chat completion."
        raise AttemptFailed(
            message, kind=CallErrorKind.SERVER_ERROR, transient=False, body=error.response.text, latency_ms=elapsed_ms()
        ) from error


def send_chat_completion(
    *, endpoint: LlmEndpoint, model: str, messages: list[dict[str, str]], params: dict[str, Any]
) -> Reply:
    """One HTTP request, no retries. Raises AttemptFailed for anything but a completion.

    The messages and parameters (the response format's JSON schema above all) go as
    `extra_body`, which the SDK merges over the typed arguments and sends as it is: it would
    otherwise walk every node of them against its request types, which cost more CPU than
    the rest of the request."""
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=model) as elapsed_ms:
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[],
            extra_body={**params, "messages": messages},
        )
        return _reply_from(raw, latency_ms=elapsed_ms())


def served_models(endpoint: LlmEndpoint) -> list[str]:
    """The model ids GET /models lists. Raises AttemptFailed when the endpoint cannot answer."""
    with openai_client(endpoint) as client, failures_translated(endpoint=endpoint, model=""):
        return [model.id for model in client.models.list()]
