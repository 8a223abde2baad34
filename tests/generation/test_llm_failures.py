"""Every way an LLM call can fail, replayed through the real openai client."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import BaseModel

from generation.llm import LlmCallError, RetryPolicy, structured_completion
from generation.llm.client import retry_after_seconds
from generation.models import AgentCall, CallErrorKind
from generation.ratelimit import EndpointLimits, shared_limiter
from tests.factories import LlmEndpointFactory
from tests.llm_replay import chat_response, error_response, fixture_response, llm_replay

pytestmark = pytest.mark.django_db

VALID = {"summary": "Hypertension follow-up.", "severity": 2}


class Summary(BaseModel):
    summary: str
    severity: int


def complete(endpoint=None, **overrides):
    arguments = {
        "endpoint": endpoint or LlmEndpointFactory(name="provider", default_model="gpt-4o-mini"),
        "messages": [{"role": "system", "content": "Summarise."}, {"role": "user", "content": "I10, BP 150/95."}],
        "schema": Summary,
        "agent": "scenario_provider",
        "prompt_version": "summary-v1",
        "temperature": 0.0,
    }
    return structured_completion(**(arguments | overrides))


def calls_oldest_first():
    return list(AgentCall.objects.order_by("id"))


def test_a_429_waits_as_long_as_retry_after_says_then_succeeds():
    answers = [
        fixture_response("error_rate_limit.json", status=429, headers={"retry-after": "7"}),
        chat_response(VALID),
    ]
    with llm_replay(answers) as replay:
        result = complete()

    assert replay.sleeps[0] >= 7
    assert result.output.severity == 2
    failed, succeeded = calls_oldest_first()
    assert failed.error_kind == CallErrorKind.RATE_LIMITED
    assert "Rate limit reached" in failed.raw_response
    assert (failed.attempt, succeeded.attempt) == (1, 2)
    assert succeeded.error_kind == ""


def test_retry_after_ms_is_honoured_too():
    answers = [error_response(429, "slow down", headers={"retry-after-ms": "2500"}), chat_response(VALID)]
    with llm_replay(answers) as replay:
        complete()

    assert replay.sleeps[0] >= 2.5


def test_a_500_is_retried_with_backoff():
    answers = [fixture_response("error_server.json", status=500), chat_response(VALID)]
    with llm_replay(answers) as replay:
        result = complete()

    assert result.output == Summary(**VALID)
    assert len(replay.sleeps) == 1
    assert [call.error_kind for call in calls_oldest_first()] == [CallErrorKind.SERVER_ERROR, ""]


def test_a_timeout_is_retried():
    with llm_replay([httpx.ReadTimeout("read timed out"), chat_response(VALID)]) as replay:
        result = complete()

    assert result.output.summary == "Hypertension follow-up."
    assert len(replay.chat_requests) == 2
    assert calls_oldest_first()[0].error_kind == CallErrorKind.TIMEOUT


def test_a_connection_reset_is_retried():
    with llm_replay([httpx.RemoteProtocolError("connection reset"), chat_response(VALID)]):
        complete()

    assert calls_oldest_first()[0].error_kind == CallErrorKind.CONNECTION


def test_a_server_that_keeps_failing_exhausts_the_attempt_budget_and_is_retryable():
    with llm_replay([error_response(503, "overloaded")] * 3) as replay, pytest.raises(LlmCallError) as raised:
        complete(retry_policy=RetryPolicy(max_attempts=3, max_total_wait_seconds=600))

    assert raised.value.kind == CallErrorKind.SERVER_ERROR
    assert raised.value.retryable is True
    assert "Gave up after 3 attempts" in str(raised.value)
    assert len(replay.chat_requests) == 3
    assert len(replay.sleeps) == 2
    assert AgentCall.objects.filter(error_kind=CallErrorKind.SERVER_ERROR).count() == 3
    assert raised.value.call == calls_oldest_first()[-1]


def test_a_retry_after_longer_than_the_wait_budget_gives_up_without_sleeping():
    answers = [error_response(429, "slow down", headers={"retry-after": "3600"})]
    with llm_replay(answers) as replay, pytest.raises(LlmCallError) as raised:
        complete(retry_policy=RetryPolicy(max_attempts=5, max_total_wait_seconds=60))

    assert raised.value.retryable is True
    assert raised.value.kind == CallErrorKind.RATE_LIMITED
    assert replay.sleeps == []


def test_backoff_grows_with_each_failure_within_full_jitter_bounds():
    policy = RetryPolicy(base_delay_seconds=1, max_delay_seconds=30)
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 30)]:
        delays = [policy.backoff(failures=failures, retry_after=None) for _ in range(50)]
        assert all(0 <= delay <= ceiling for delay in delays)
    assert policy.backoff(failures=1, retry_after=10) == 10


def test_an_exhausted_quota_is_not_retried():
    answers = [error_response(429, "You exceeded your current quota", code="insufficient_quota")]
    with llm_replay(answers) as replay, pytest.raises(LlmCallError) as raised:
        complete()

    assert raised.value.retryable is False
    assert "no quota left" in str(raised.value)
    assert replay.sleeps == []


def test_malformed_json_is_repaired_once():
    answers = [chat_response('{"summary": "Hypertension follow-up.", "severity": 2'), chat_response(VALID)]
    with llm_replay(answers) as replay:
        result = complete()

    assert result.output == Summary(**VALID)
    repair_request = replay.chat_requests[1]
    assert repair_request.messages[-2] == {
        "role": "assistant",
        "content": '{"summary": "Hypertension follow-up.", "severity": 2',
    }
    assert "not valid JSON" in repair_request.messages[-1]["content"]
    first, repaired = calls_oldest_first()
    assert first.error_kind == CallErrorKind.MALFORMED_JSON
    assert first.parsed_output is None
    assert repaired.attempt == 2
    assert repaired.parsed_output == VALID


def test_malformed_json_twice_fails_with_the_raw_text_kept():
    answers = [chat_response("Sure! Here is the summary: hypertension."), chat_response("{not json either")]
    with llm_replay(answers), pytest.raises(LlmCallError) as raised:
        complete()

    assert raised.value.kind == CallErrorKind.MALFORMED_JSON
    assert raised.value.retryable is False
    assert raised.value.call.raw_response == "{not json either"
    assert "after one repair attempt" in str(raised.value)
    assert AgentCall.objects.filter(error_kind=CallErrorKind.MALFORMED_JSON).count() == 2


def test_schema_invalid_json_names_the_bad_field_and_fails_after_the_repair():
    wrong = {"summary": "Hypertension follow-up.", "severity": "moderate"}
    with llm_replay([chat_response(wrong), chat_response(wrong)]) as replay, pytest.raises(LlmCallError) as raised:
        complete()

    assert raised.value.kind == CallErrorKind.SCHEMA_INVALID
    assert "severity" in replay.chat_requests[1].messages[-1]["content"]
    assert "severity" in str(raised.value)
    assert raised.value.call.raw_response == '{"summary": "Hypertension follow-up.", "severity": "moderate"}'


def test_schema_invalid_json_can_be_repaired():
    with llm_replay([chat_response({"summary": "x"}), chat_response(VALID)]):
        result = complete()

    assert result.output.severity == 2


def test_json_in_a_code_fence_is_accepted():
    with llm_replay([chat_response('```json\n{"summary": "x", "severity": 1}\n```')]):
        result = complete()

    assert result.output == Summary(summary="x", severity=1)


def test_truncated_output_is_reported_as_such_without_a_repair():
    with (
        llm_replay([fixture_response("chat_completion_truncated.json")]) as replay,
        pytest.raises(LlmCallError) as raised,
    ):
        complete()

    assert raised.value.kind == CallErrorKind.TRUNCATED
    assert "finish_reason=length" in str(raised.value)
    assert len(replay.chat_requests) == 1
    assert raised.value.call.finish_reason == "length"
    assert raised.value.call.raw_response.startswith('{"summary":"Hypertension')


def test_a_refusal_is_reported_as_such():
    with (
        llm_replay([fixture_response("chat_completion_refusal.json")]) as replay,
        pytest.raises(LlmCallError) as raised,
    ):
        complete()

    assert raised.value.kind == CallErrorKind.REFUSAL
    assert "can't help" in str(raised.value)
    assert raised.value.call.raw_response == "I'm sorry, I can't help with that request."
    assert len(replay.chat_requests) == 1


def test_a_content_filter_stop_is_a_refusal():
    with llm_replay([chat_response(None, finish_reason="content_filter")]), pytest.raises(LlmCallError) as raised:
        complete()

    assert raised.value.kind == CallErrorKind.REFUSAL


def test_an_unknown_model_fails_at_once_with_a_clear_message():
    answers = [fixture_response("error_model_not_found.json", status=404)]
    with llm_replay(answers) as replay, pytest.raises(LlmCallError) as raised:
        complete(model="gpt-9")

    assert raised.value.kind == CallErrorKind.NOT_FOUND
    assert str(raised.value).startswith("Model 'gpt-9' is not served by endpoint 'provider' (404).")
    assert raised.value.retryable is False
    assert len(replay.chat_requests) == 1
    assert raised.value.call.model == "gpt-9"


@pytest.mark.parametrize(
    ("status", "kind"), [(401, CallErrorKind.AUTH), (403, CallErrorKind.AUTH), (400, CallErrorKind.BAD_REQUEST)]
)
def test_client_errors_are_not_retried(status, kind):
    with llm_replay([error_response(status, "no")]) as replay, pytest.raises(LlmCallError) as raised:
        complete()

    assert raised.value.kind == kind
    assert len(replay.chat_requests) == 1


def test_the_api_key_is_never_stored(monkeypatch):
    canary = "sk-test-LEAK-CANARY"
    monkeypatch.setenv("CANARY_API_KEY", canary)
    endpoint = LlmEndpointFactory(api_key_env="CANARY_API_KEY")
    answers = [
        error_response(401, f"Incorrect API key provided: {canary}."),
    ]
    with llm_replay(answers) as replay, pytest.raises(LlmCallError):
        complete(endpoint)
    with llm_replay([chat_response(VALID)]):
        complete(endpoint)

    assert replay.requests[0].headers["authorization"] == f"Bearer {canary}"
    rows = list(AgentCall.objects.values())
    assert len(rows) == 2
    assert all(canary not in str(value) for row in rows for value in row.values())
    assert "[redacted]" in rows[0]["raw_response"] + rows[1]["raw_response"]


def test_a_local_endpoint_without_a_key_sends_a_placeholder():
    with llm_replay([chat_response(VALID)]) as replay:
        complete(LlmEndpointFactory(api_key_env=""))

    assert replay.requests[0].headers["authorization"] == "Bearer not-needed-for-local"


def test_a_server_that_rejects_the_structured_output_mode_is_not_retried_and_says_which_mode_to_pick():
    # What llama-cpp-python's server answers to response_format json_schema (a 500, not a 400).
    said = (
        "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}"
    )
    endpoint = LlmEndpointFactory(name="local-demo")
    with llm_replay([error_response(500, said)]) as replay, pytest.raises(LlmCallError) as raised:
        complete(endpoint)

    assert raised.value.kind == CallErrorKind.BAD_REQUEST
    assert "structured output mode 'json_schema'" in str(raised.value)
    assert "json_object_schema" in str(raised.value)
    assert len(replay.chat_requests) == 1


def test_a_web_page_instead_of_a_completion_points_at_the_base_url():
    page = httpx.Response(200, text="<html>Welcome to nginx</html>", headers={"content-type": "text/html"})
    with llm_replay([page]), pytest.raises(LlmCallError) as raised:
        complete()

    assert raised.value.kind == CallErrorKind.BAD_REQUEST
    assert "text/html instead of a chat completion" in str(raised.value)
    assert "base URL" in str(raised.value)
    assert raised.value.call.raw_response == "<html>Welcome to nginx</html>"


def test_a_call_waits_for_a_free_slot_and_gives_up_without_sending_when_none_frees():
    endpoint = LlmEndpointFactory(max_concurrency=1)
    limiter, limits = shared_limiter(), EndpointLimits.of(endpoint)
    assert limiter.try_acquire_slot(limits, "another-worker")
    try:
        with llm_replay([chat_response(VALID)]) as replay, pytest.raises(LlmCallError) as raised:
            complete(endpoint, retry_policy=RetryPolicy(capacity_wait_seconds=10))
    finally:
        limiter.release_slot(limits, "another-worker")

    assert raised.value.kind == CallErrorKind.RATE_LIMITED
    assert raised.value.retryable is True
    assert "max 1 in flight" in str(raised.value)
    assert replay.requests == []
    assert 10 <= sum(replay.sleeps) < 11


def test_retry_after_can_be_an_http_date():
    in_thirty_seconds = email.utils.format_datetime(datetime.now(tz=UTC) + timedelta(seconds=30), usegmt=True)

    assert 28 <= retry_after_seconds(httpx.Headers({"retry-after": in_thirty_seconds})) <= 30
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None
