"""Checks that refuse a misconfigured endpoint before any case is created."""

from __future__ import annotations

from generation.llm.client import AttemptFailed, served_models
from generation.llm.errors import LlmConfigError
from generation.models import CallErrorKind, LlmEndpoint
from generation.models.endpoints import api_key_env_problem, base_url_problem


def endpoint_key_problem(endpoint: LlmEndpoint) -> str | None:
    # A row saved before the allow-list (or under a wider LLM_API_KEY_ENV_ALLOWED) is refused here.
    refused = api_key_env_problem(endpoint.api_key_env) or base_url_problem(endpoint.base_url)
    if refused:
        return f"Endpoint '{endpoint.name}' cannot be used until it is corrected in the admin: {refused}"
    if endpoint.api_key_env and endpoint.api_key() is None:
        return (
            f"Endpoint '{endpoint.name}' reads its API key from ${endpoint.api_key_env}, "
            "but that environment variable is not set."
        )
    return None


def model_served_problem(*, endpoint: LlmEndpoint, model: str, served: list[str]) -> str | None:
    if model in served:
        return None
    listed = ", ".join(sorted(served)[:10]) or "none"
    return f"Model '{model}' is not served by endpoint '{endpoint.name}'. It serves: {listed}."


def endpoint_preflight(*, endpoint: LlmEndpoint, model: str | None = None) -> None:
    """Raise LlmConfigError (a message for whoever configured the endpoint) when the key is
    missing, the endpoint cannot be reached, or it does not serve the model (GET /models)."""
    if not endpoint.is_active:
        raise LlmConfigError(f"Endpoint '{endpoint.name}' is switched off (inactive).")
    problem = endpoint_key_problem(endpoint)
    if problem:
        raise LlmConfigError(problem)
    model_name = model or endpoint.default_model
    try:
        served = served_models(endpoint)
    except AttemptFailed as failure:
        if failure.kind == CallErrorKind.NOT_FOUND:
            # Some OpenAI-compatible servers have no /models route; the first call will tell.
            return
        raise LlmConfigError(str(failure)) from failure
    problem = model_served_problem(endpoint=endpoint, model=model_name, served=served)
    if problem:
        raise LlmConfigError(problem)
