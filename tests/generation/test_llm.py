"""generation.llm.structured_completion against replayed OpenAI-format responses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel

from generation.llm import LlmResult, structured_completion
from generation.models import AgentCall, StructuredOutputMode
from tests.factories import LlmEndpointFactory, LlmModelFactory
from tests.llm_replay import chat_response, fixture_response, llm_replay

pytestmark = pytest.mark.django_db


class Summary(BaseModel):
    summary: str
    severity: int


MESSAGES = [
    {"role": "system", "content": "You summarise clinical scenarios."},
    {"role": "user", "content": "Summarise: hypertension I10, BP 150/95 on amlodipine."},
]


def complete(endpoint, **overrides):
    arguments = {
        "endpoint": endpoint,
        "messages": MESSAGES,
        "schema": Summary,
        "agent": "scenario_provider",
        "prompt_version": "summary-v1",
        "temperature": 0.7,
    }
    return structured_completion(**(arguments | overrides))


def test_it_returns_the_validated_output_and_records_the_call():
    endpoint = LlmEndpointFactory(default_model="gpt-4o-mini")
    with llm_replay([fixture_response("chat_completion_ok.json", headers={"x-request-id": "req_abc"})]):
        result = complete(endpoint, max_tokens=800)

    assert isinstance(result, LlmResult)
    assert result.output == Summary(
        summary="Hypertension follow-up, blood pressure 150/95 despite amlodipine.", severity=2
    )
    call = AgentCall.objects.get()
    assert result.call == call
    assert call.parsed_output == {"summary": result.output.summary, "severity": 2}
    assert call.model == "gpt-4o-mini"
    assert call.prompt_version == "summary-v1"
    assert call.agent == "scenario_provider"
    assert (call.input_tokens, call.output_tokens, call.cached_input_tokens) == (1200, 300, 1000)
    assert call.finish_reason == "stop"
    assert call.provider_request_id == "req_abc"
    assert call.request_params["temperature"] == 0.7
    assert call.request_params["max_tokens"] == 800
    assert call.request_messages == MESSAGES
    assert '"severity":2' in call.raw_response
    assert call.error_kind == ""


def test_json_schema_mode_sends_a_strict_schema():
    endpoint = LlmEndpointFactory(structured_output_mode=StructuredOutputMode.JSON_SCHEMA)
    with llm_replay([chat_response({"summary": "x", "severity": 1})]) as replay:
        complete(endpoint)

    response_format = replay.chat_requests[0].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Summary"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["summary", "severity"]


def test_json_object_schema_mode_sends_the_schema_inside_json_object():
    endpoint = LlmEndpointFactory(structured_output_mode=StructuredOutputMode.JSON_OBJECT_SCHEMA)
    with llm_replay([chat_response({"summary": "x", "severity": 1})]) as replay:
        complete(endpoint)

    response_format = replay.chat_requests[0].json["response_format"]
    assert response_format["type"] == "json_object"
    assert set(response_format["schema"]["properties"]) == {"summary", "severity"}


def test_json_object_mode_describes_the_schema_in_the_first_system_message():
    endpoint = LlmEndpointFactory(structured_output_mode=StructuredOutputMode.JSON_OBJECT)
    with llm_replay([chat_response({"summary": "x", "severity": 1})]) as replay:
        complete(endpoint)

    sent = replay.chat_requests[0].json
    assert sent["response_format"] == {"type": "json_object"}
    assert [message["role"] for message in sent["messages"]] == ["system", "user"]
    assert sent["messages"][0]["content"].startswith("You summarise clinical scenarios.")
    assert '"severity"' in sent["messages"][0]["content"]


def test_cost_comes_from_the_price_table_of_the_endpoint_model():
    endpoint = LlmEndpointFactory(default_model="gpt-4o-mini")
    LlmModelFactory(
        endpoint=endpoint,
        name="gpt-4o-mini",
        input_price_per_mtok=Decimal("0.15"),
        cached_input_price_per_mtok=Decimal("0.075"),
        output_price_per_mtok=Decimal("0.60"),
    )
    with llm_replay([fixture_response("chat_completion_ok.json")]):
        result = complete(endpoint)

    # 200 uncached input, 1000 cached input, 300 output tokens.
    expected = (Decimal("0.15") * 200 + Decimal("0.075") * 1000 + Decimal("0.60") * 300) / 1_000_000
    assert result.call.cost == expected.quantize(Decimal("0.000001"))


def test_cost_is_zero_for_a_model_missing_from_the_price_table():
    endpoint = LlmEndpointFactory(default_model="unpriced-model")
    with llm_replay([fixture_response("chat_completion_ok.json")]):
        result = complete(endpoint)

    assert result.call.cost == 0
