"""Replay hand-written OpenAI-format HTTP responses to generation.llm, so the real openai client runs
(request building, response parsing, error mapping) without a network.

Typical use in a test:

    from tests.llm_replay import chat_response, error_response, llm_replay

    def test_it_retries_after_a_429(db):
        with llm_replay([
            error_response(429, "Slow down", headers={"retry-after": "2"}),
            chat_response({"decision": "approve"}, usage=(120, 30)),
        ]) as replay:
            result = structured_completion(endpoint=..., ...)
        assert replay.sleeps == [2.0]                       # the pause the client took (no real sleeping)
        assert replay.requests[0].json["response_format"]   # what the client sent, as parsed JSON
        assert "I10" in replay.requests[0].prompt_text      # every message's content, joined

Each item of the list answers one HTTP request, in order:
- an httpx.Response (see chat_response / error_response / fixture_response / models_response);
- a dict: sent as a 200 JSON body (e.g. chat_completion_body(...));
- an exception instance or class: raised by the transport (httpx.ReadTimeout, httpx.ConnectError, ...);
- a callable taking a SentRequest and returning any of the above (to answer by content).
A request beyond the list fails the test with a message naming it. `ReplayTransport` can also be
used on its own: `httpx.Client(transport=ReplayTransport([...]))`.

The bodies in tests/fixtures/llm/*.json are hand-written, not captured from a provider: they follow
OpenAI's documented chat.completions and error wire format (ids, usage with cached tokens, error
objects) closely enough for the openai SDK to parse them as it parses real replies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from generation.llm import use_http_client_factory, use_sleep

FIXTURES = Path(__file__).parent / "fixtures" / "llm"


@dataclass(frozen=True)
class SentRequest:
    method: str
    path: str
    headers: httpx.Headers
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.json.get("messages", []))

    @property
    def prompt_text(self) -> str:
        return "\n".join(str(message.get("content") or "") for message in self.messages)


Answer = httpx.Response | dict | BaseException | type | Callable[[SentRequest], Any]


class ReplayTransport(httpx.BaseTransport):
    def __init__(self, answers: Sequence[Answer]) -> None:
        self.answers = list(answers)
        self.requests: list[SentRequest] = []

    @property
    def remaining(self) -> int:
        return len(self.answers) - len(self.requests)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = SentRequest(method=request.method, path=request.url.path, headers=request.headers, body=request.read())
        self.requests.append(sent)
        index = len(self.requests) - 1
        if index >= len(self.answers):
            raise AssertionError(
                f"Unexpected request #{index + 1} {request.method} {request.url.path}: "
                f"the replay has only {len(self.answers)} answer(s)."
            )
        return self._respond(self.answers[index], sent, request)

    def _respond(self, answer: Answer, sent: SentRequest, request: httpx.Request) -> httpx.Response:
        if isinstance(answer, type) and issubclass(answer, BaseException):
            answer = answer("replayed failure", request=request) if issubclass(answer, httpx.RequestError) else answer()
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx.Response):
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content, request=request)
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer, request=request)
        if callable(answer):
            return self._respond(answer(sent), sent, request)
        raise TypeError(f"Cannot replay {answer!r}")


@dataclass
class Replay:
    transport: ReplayTransport
    sleeps: list[float] = field(default_factory=list)

    @property
    def requests(self) -> list[SentRequest]:
        return self.transport.requests

    @property
    def chat_requests(self) -> list[SentRequest]:
        return [request for request in self.requests if request.path.endswith("/chat/completions")]


@contextmanager
def llm_replay(answers: Sequence[Answer]) -> Iterator[Replay]:
    """Make every generation.llm call inside the block use these answers; pauses are recorded, not slept."""
    replay = Replay(transport=ReplayTransport(answers))
    with (
        use_http_client_factory(lambda endpoint: httpx.Client(transport=replay.transport)),
        use_sleep(replay.sleeps.append),
    ):
        yield replay


def chat_completion_body(
    content: str | dict[str, Any] | None,
    *,
    finish_reason: str = "stop",
    usage: tuple[int, int] = (100, 50),
    cached_tokens: int = 0,
    refusal: str | None = None,
    model: str = "test-model",
    completion_id: str = "chatcmpl-replay-1",
) -> dict[str, Any]:
    """A chat.completions response body; a dict content is sent as its JSON text."""
    text = json.dumps(content) if isinstance(content, dict) else content
    prompt_tokens, completion_tokens = usage
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": 1764300000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        },
    }


def chat_response(
    content: str | dict[str, Any] | None, *, request_id: str = "req_replay", **body: Any
) -> httpx.Response:
    return httpx.Response(200, json=chat_completion_body(content, **body), headers={"x-request-id": request_id})


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None, code: str | None = None
) -> httpx.Response:
    body = {"error": {"message": message, "type": "replayed_error", "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=headers or {})


def models_response(model_ids: Sequence[str]) -> httpx.Response:
    data = [{"id": model_id, "object": "model", "created": 1764300000, "owned_by": "replay"} for model_id in model_ids]
    return httpx.Response(200, json={"object": "list", "data": data})


def fixture_body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def fixture_response(name: str, *, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    """A hand-written body from tests/fixtures/llm/, e.g. fixture_response("chat_completion_ok.json")."""
    return httpx.Response(status, json=fixture_body(name), headers=headers or {})
