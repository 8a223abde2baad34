"""manage.py llm_check against replayed endpoints."""

from __future__ import annotations

from io import StringIO

import httpx
import pytest
from django.core.management import CommandError, call_command

from generation.models import AgentCall, StructuredOutputMode
from tests.factories import LlmEndpointFactory
from tests.llm_replay import chat_response, error_response, llm_replay, models_response

pytestmark = pytest.mark.django_db

ANSWER = {"sum": 5, "colour": "blue"}


def run_check(*args):
    out = StringIO()
    try:
        call_command("llm_check", *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def test_a_healthy_local_demo_endpoint_passes_and_is_labelled_as_a_demo():
    LlmEndpointFactory(
        name="local-demo",
        default_model="gemma-3-270m",
        is_local_demo=True,
        structured_output_mode=StructuredOutputMode.JSON_OBJECT_SCHEMA,
    )
    with llm_replay([models_response(["gemma-3-270m"]), chat_response(ANSWER)]) as replay:
        output, error = run_check()

    assert error is None
    header, row = output.splitlines()[:2]
    assert header.split() == ["ENDPOINT", "MODEL", "REACHABLE", "MODEL", "SERVED", "STRUCTURED", "OUTPUT", "LATENCY"]
    assert row.split()[:5] == ["local-demo", "gemma-3-270m", "yes", "yes", "yes"]
    assert "(json_object_schema)" in row
    assert row.endswith(" ms")
    assert "local demo model: for trying the product, not for real data" in output
    assert "All 1 endpoint(s) passed." in output
    assert replay.chat_requests[0].json["response_format"]["type"] == "json_object"
    check_call = AgentCall.objects.get()
    assert check_call.agent == ""
    assert check_call.parsed_output == ANSWER


def test_an_endpoint_not_serving_its_model_fails_with_a_non_zero_exit(monkeypatch):
    monkeypatch.setenv("CHECK_TEST_API_KEY", "sk-test")
    LlmEndpointFactory(name="provider", default_model="gpt-9", api_key_env="CHECK_TEST_API_KEY")
    with llm_replay([models_response(["gpt-4o-mini"]), error_response(404, "The model `gpt-9` does not exist")]):
        output, error = run_check("--endpoint", "provider")

    assert error is not None
    assert "1 of 1 endpoint(s) failed the check: provider" in str(error)
    assert output.splitlines()[1].split()[:5] == ["provider", "gpt-9", "yes", "NO", "NO"]
    assert "Model 'gpt-9' is not served by endpoint 'provider'" in output


def test_only_the_named_endpoint_is_checked_and_a_missing_key_is_reported(monkeypatch):
    monkeypatch.delenv("UNSET_CHECK_API_KEY", raising=False)
    LlmEndpointFactory(name="other")
    LlmEndpointFactory(name="provider", api_key_env="UNSET_CHECK_API_KEY")
    with llm_replay([]) as replay:
        output, error = run_check("--endpoint", "provider")

    assert error is not None
    assert "other" not in output
    assert "$UNSET_CHECK_API_KEY" in output
    assert replay.requests == []


def test_an_unreachable_endpoint_fails():
    LlmEndpointFactory(name="down")
    with llm_replay([httpx.ConnectError("connection refused")]):
        output, error = run_check()

    assert error is not None
    assert output.splitlines()[1].split()[:3] == ["down", "test-model", "NO"]
    assert "Could not connect to endpoint 'down'" in output


def test_invalid_structured_output_fails_the_check():
    LlmEndpointFactory(name="sloppy")
    answers = [models_response(["test-model"]), chat_response("two plus three is five"), chat_response("five")]
    with llm_replay(answers):
        output, error = run_check()

    assert error is not None
    assert "Structured output failed (malformed_json)" in output


def test_an_unknown_endpoint_name_is_refused():
    LlmEndpointFactory(name="provider")
    with pytest.raises(CommandError, match="No LLM endpoint named 'nope'. Known endpoints: provider."):
        call_command("llm_check", "--endpoint", "nope")
