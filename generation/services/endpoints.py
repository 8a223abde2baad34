"""The default LLM endpoint, derived from the environment at start-up.

With OPENAI_API_KEY or LLM_BASE_URL set, the default is that provider; otherwise it is
the local demo model that `make run` serves. An admin who made another endpoint the
default in the admin keeps it: only the two endpoints managed here are switched.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction

from generation import selectors
from generation.errors import DomainError
from generation.models import LlmEndpoint, LlmModel, StructuredOutputMode
from generation.models.endpoints import api_key_env_problem, base_url_problem

LOCAL_DEMO_ENDPOINT = "local-demo"
PROVIDER_ENDPOINT = "provider"
MANAGED_ENDPOINTS = (LOCAL_DEMO_ENDPOINT, PROVIDER_ENDPOINT)


def local_demo_base_url() -> str:
    return f"http://{settings.LOCAL_LLM_HOST}:{settings.LOCAL_LLM_PORT}/v1"


def _env_price(name: str) -> Decimal:
    import os

    return Decimal(os.environ.get(name, "0") or "0")


def _upsert_local_demo() -> LlmEndpoint:
    endpoint, _ = LlmEndpoint.objects.update_or_create(
        name=LOCAL_DEMO_ENDPOINT,
        defaults={
            "base_url": local_demo_base_url(),
            "api_key_env": "",
            "structured_output_mode": StructuredOutputMode.JSON_OBJECT_SCHEMA,
            "default_model": settings.LOCAL_LLM_MODEL,
            # One llama.cpp server on 2 cores decodes one request at a time.
            "max_concurrency": 1,
            "timeout_seconds": max(settings.LLM_TIMEOUT_SECONDS, 300),
            "is_local_demo": True,
            "is_active": True,
        },
    )
    LlmModel.objects.get_or_create(endpoint=endpoint, name=settings.LOCAL_LLM_MODEL)
    return endpoint


class EndpointSettingsError(DomainError):
    """The environment describes an endpoint that may not be used (LLM_BASE_URL, LLM_API_KEY_ENV)."""


def _provider_settings_check() -> None:
    problems = [base_url_problem(settings.LLM_BASE_URL), api_key_env_problem(settings.LLM_API_KEY_ENV)]
    refused = " ".join(problem for problem in problems if problem)
    if refused:
        raise EndpointSettingsError(f"LLM_BASE_URL / LLM_API_KEY_ENV refused: {refused}")


def _upsert_provider() -> LlmEndpoint:
    _provider_settings_check()
    endpoint_fields = {
        "base_url": settings.LLM_BASE_URL,
        "api_key_env": settings.LLM_API_KEY_ENV,
        "default_model": settings.LLM_MODEL,
        "timeout_seconds": settings.LLM_TIMEOUT_SECONDS,
        "is_local_demo": False,
        "is_active": True,
    }
    endpoint, _ = LlmEndpoint.objects.update_or_create(
        name=PROVIDER_ENDPOINT,
        defaults=endpoint_fields,
        create_defaults={**endpoint_fields, "supports_batch_api": settings.LLM_SUPPORTS_BATCH_API},
    )
    LlmModel.objects.update_or_create(
        endpoint=endpoint,
        name=settings.LLM_MODEL,
        defaults={
            "input_price_per_mtok": _env_price("LLM_INPUT_PRICE_PER_MTOK"),
            "output_price_per_mtok": _env_price("LLM_OUTPUT_PRICE_PER_MTOK"),
        },
    )
    return endpoint


def default_endpoint_configure() -> LlmEndpoint:
    """Register the environment's endpoint and make it the default (idempotent)."""
    with transaction.atomic():
        endpoint = _upsert_provider() if settings.LLM_PROVIDER_CONFIGURED else _upsert_local_demo()
        current = selectors.default_endpoint()
        if current is not None and (current.name not in MANAGED_ENDPOINTS or current.pk == endpoint.pk):
            return current
        # Cleared first: the database allows one default endpoint at a time.
        LlmEndpoint.objects.filter(is_default=True).update(is_default=False)
        LlmEndpoint.objects.filter(pk=endpoint.pk).update(is_default=True)
        endpoint.is_default = True
        return endpoint
