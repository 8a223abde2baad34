"""endpoint_preflight refuses a misconfigured endpoint before any case is created."""

from __future__ import annotations

import httpx
import pytest

from generation.llm import LlmConfigError, endpoint_preflight
from tests.factories import LlmEndpointFactory
from tests.llm_replay import error_response, fixture_response, llm_replay, models_response

pytestmark = pytest.mark.django_db


def test_an_endpoint_whose_key_variable_is_unset_is_refused_without_a_request(monkeypatch):
    monkeypatch.delenv("MISSING_TEST_API_KEY", raising=False)
    endpoint = LlmEndpointFactory(name="provider", api_key_env="MISSING_TEST_API_KEY")

    with llm_replay([]) as replay, pytest.raises(LlmConfigError) as raised:
        endpoint_preflight(endpoint=endpoint)

    assert str(raised.value) == (
        "Endpoint 'provider' reads its API key from $MISSING_TEST_API_KEY, but that environment variable is not set."
    )
    assert replay.requests == []


def test_a_model_the_endpoint_does_not_serve_is_refused(monkeypatch):
    monkeypatch.setenv("PRESENT_TEST_API_KEY", "sk-test")
    endpoint = LlmEndpointFactory(name="provider", api_key_env="PRESENT_TEST_API_KEY")

    with llm_replay([fixture_response("models_list.json")]) as replay, pytest.raises(LlmConfigError) as raised:
        endpoint_preflight(endpoint=endpoint, model="gpt-9")

    assert "Model 'gpt-9' is not served by endpoint 'provider'" in str(raised.value)
    assert "gpt-4o-mini" in str(raised.value)
    assert replay.requests[0].path.endswith("/models")


def test_a_served_model_passes():
    endpoint = LlmEndpointFactory(default_model="gemma-3-270m")

    with llm_replay([models_response(["gemma-3-270m"])]) as replay:
        endpoint_preflight(endpoint=endpoint)  # no LlmConfigError

    assert len(replay.requests) == 1
    assert replay.requests[0].path.endswith("/models")


def test_an_unreachable_endpoint_is_refused():
    endpoint = LlmEndpointFactory(name="local-demo")

    with llm_replay([httpx.ConnectError("connection refused")]), pytest.raises(LlmConfigError) as raised:
        endpoint_preflight(endpoint=endpoint)

    assert "Could not connect to endpoint 'local-demo'" in str(raised.value)


def test_a_rejected_key_is_refused():
    with llm_replay([error_response(401, "Invalid API key")]), pytest.raises(LlmConfigError, match="401"):
        endpoint_preflight(endpoint=LlmEndpointFactory())


def test_an_inactive_endpoint_is_refused():
    with llm_replay([]), pytest.raises(LlmConfigError, match="inactive"):
        endpoint_preflight(endpoint=LlmEndpointFactory(is_active=False))
