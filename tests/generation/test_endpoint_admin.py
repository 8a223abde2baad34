"""An endpoint's key is sent as a bearer token to its base URL: the admin accepts only key
variables on the allow-list, http(s) addresses, and a changed address only with the key
variable typed again, recorded in the history with both addresses."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from generation.llm import LlmConfigError, endpoint_preflight
from generation.models import LlmEndpoint
from tests.factories import LlmEndpointFactory
from tests.llm_replay import llm_replay

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:generation_llmendpoint_add")


def _form(**overrides: str) -> dict[str, str]:
    fields = {
        "name": "eu-provider",
        "base_url": "https://llm.example.org/v1",
        "api_key_env": "EU_PROVIDER_API_KEY",
        "structured_output_mode": "json_schema",
        "default_model": "big-model",
        "max_concurrency": "4",
        "timeout_seconds": "120",
        "is_active": "on",
        "models-TOTAL_FORMS": "0",
        "models-INITIAL_FORMS": "0",
        "models-MIN_NUM_FORMS": "0",
        "models-MAX_NUM_FORMS": "1000",
    }
    return {**fields, **overrides}


def _change_url(endpoint: LlmEndpoint) -> str:
    return reverse("admin:generation_llmendpoint_change", args=[endpoint.pk])


def _errors(response) -> dict[str, list[str]]:
    return response.context["adminform"].form.errors


def test_it_adds_an_endpoint_whose_key_variable_is_allowed(admin_member_client):
    response = admin_member_client.post(ADD_URL, _form())
    assert response.status_code == 302
    assert LlmEndpoint.objects.get(name="eu-provider").api_key_env == "EU_PROVIDER_API_KEY"


@pytest.mark.parametrize(
    "name", ["DATABASE_URL", "SECRET_KEY", "DJANGO_SECRET_KEY", "CELERY_BROKER_URL", "REDIS_API_KEY", "PATH"]
)
def test_it_refuses_a_key_variable_that_is_not_an_api_key(admin_member_client, name):
    response = admin_member_client.post(ADD_URL, _form(api_key_env=name))
    assert response.status_code == 200
    assert f"${name}" in _errors(response)["api_key_env"][0]
    assert not LlmEndpoint.objects.filter(name="eu-provider").exists()


def test_the_allow_list_follows_the_setting_but_never_lets_server_secrets_through(admin_member_client, settings):
    settings.LLM_API_KEY_ENV_ALLOWED = ["AZURE_*", "*"]
    assert admin_member_client.post(ADD_URL, _form(api_key_env="AZURE_OPENAI_KEY")).status_code == 302
    refused = admin_member_client.post(ADD_URL, _form(name="other", api_key_env="DJANGO_SECRET_KEY"))
    assert "never an API key" in _errors(refused)["api_key_env"][0]


@pytest.mark.parametrize("url", ["ftp://llm.example.org/v1", "ftps://llm.example.org/v1"])
def test_it_refuses_a_base_url_that_is_not_http(admin_member_client, url):
    response = admin_member_client.post(ADD_URL, _form(base_url=url))
    assert response.status_code == 200
    assert "http:// or https://" in _errors(response)["base_url"][0]


def test_changing_the_base_url_needs_the_key_variable_typed_again(admin_member_client):
    endpoint = LlmEndpointFactory(name="eu-provider", base_url="https://llm.example.org/v1", api_key_env="EU_API_KEY")
    moved = _form(base_url="https://elsewhere.example.net/v1", api_key_env="EU_API_KEY")

    assert "Confirm the key variable" in admin_member_client.get(_change_url(endpoint)).content.decode()
    refused = admin_member_client.post(_change_url(endpoint), moved)
    assert "type the key variable's name again" in _errors(refused)["confirm_api_key_env"][0]
    wrong = admin_member_client.post(_change_url(endpoint), {**moved, "confirm_api_key_env": "OTHER_API_KEY"})
    assert "confirm_api_key_env" in _errors(wrong)
    endpoint.refresh_from_db()
    assert endpoint.base_url == "https://llm.example.org/v1"

    confirmed = admin_member_client.post(_change_url(endpoint), {**moved, "confirm_api_key_env": "EU_API_KEY"})
    assert confirmed.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.base_url == "https://elsewhere.example.net/v1"
    entry = LogEntry.objects.get(object_id=str(endpoint.pk), action_flag=CHANGE)
    assert "from https://llm.example.org/v1 to https://elsewhere.example.net/v1" in entry.get_change_message()
    assert "Confirm" not in entry.get_change_message()


def test_other_changes_and_keyless_endpoints_need_no_confirmation(admin_member_client):
    endpoint = LlmEndpointFactory(name="eu-provider", base_url="https://llm.example.org/v1", api_key_env="EU_API_KEY")
    renamed = admin_member_client.post(
        _change_url(endpoint), _form(api_key_env="EU_API_KEY", default_model="bigger-model")
    )
    assert renamed.status_code == 302

    local = LlmEndpointFactory(name="lab", base_url="http://127.0.0.1:9/v1", api_key_env="")
    moved = admin_member_client.post(
        _change_url(local), _form(name="lab", base_url="http://10.0.0.5/v1", api_key_env="")
    )
    assert moved.status_code == 302


def test_an_endpoint_saved_before_the_allow_list_never_sends_the_variable(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://medsynth:hunter2@db/medsynth")
    endpoint = LlmEndpointFactory(name="old", api_key_env="DATABASE_URL")  # saved without clean()

    assert endpoint.api_key() is None
    with llm_replay([]) as replay, pytest.raises(LlmConfigError, match=r"\$DATABASE_URL holds a setting"):
        endpoint_preflight(endpoint=endpoint)
    assert replay.requests == []


def test_an_address_typed_without_a_scheme_gets_https(admin_member_client):
    assert admin_member_client.post(ADD_URL, _form(base_url="llm.example.org/v1")).status_code == 302
    assert LlmEndpoint.objects.get(name="eu-provider").base_url == "https://llm.example.org/v1"
