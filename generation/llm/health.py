"""One quick check per endpoint, for `manage.py llm_check`: reachable, model served,
structured output works, and how long a tiny structured call takes."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from generation.llm.client import AttemptFailed, served_models
from generation.llm.completion import RetryPolicy, structured_completion
from generation.llm.errors import LlmCallError
from generation.llm.preflight import endpoint_key_problem, model_served_problem
from generation.models import CallErrorKind, LlmEndpoint

HEALTH_CHECK_PROMPT_VERSION = "llm-check-v1"
# A check should answer in seconds, not sit out a long outage.
HEALTH_CHECK_RETRIES = RetryPolicy(max_attempts=2, max_total_wait_seconds=5, capacity_wait_seconds=30)


class HealthCheckAnswer(BaseModel):
    """The tiny schema of the structured-output round trip."""

    sum: int
    colour: str


HEALTH_CHECK_MESSAGES = [
    {"role": "system", "content": "You answer with a small JSON object."},
    {
        "role": "user",
        "content": 'What is 2 + 3, and what colour is a clear daytime sky? Use the keys "sum" and "colour".',
    },
]


@dataclass
class EndpointHealth:
    endpoint: LlmEndpoint
    model: str
    reachable: bool | None = None
    model_served: bool | None = None
    structured_output: bool | None = None
    latency_ms: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_models(health: EndpointHealth) -> None:
    try:
        served = served_models(health.endpoint)
    except AttemptFailed as failure:
        if failure.kind == CallErrorKind.NOT_FOUND:
            health.reachable = True  # the server answered; it just has no /models route
            return
        health.reachable = failure.kind not in (CallErrorKind.CONNECTION, CallErrorKind.TIMEOUT)
        health.problems.append(str(failure))
        return
    health.reachable = True
    problem = model_served_problem(endpoint=health.endpoint, model=health.model, served=served)
    health.model_served = problem is None
    if problem:
        health.problems.append(problem)


def _check_structured_output(health: EndpointHealth) -> None:
    try:
        result = structured_completion(
            endpoint=health.endpoint,
            model=health.model,
            messages=HEALTH_CHECK_MESSAGES,
            schema=HealthCheckAnswer,
            agent="",
            prompt_version=HEALTH_CHECK_PROMPT_VERSION,
            temperature=0.0,
            max_tokens=200,
            retry_policy=HEALTH_CHECK_RETRIES,
        )
    except LlmCallError as error:
        health.structured_output = False
        health.problems.append(f"Structured output failed ({error.kind}): {error}")
        if error.call is not None:
            health.latency_ms = error.call.latency_ms
        return
    health.structured_output = True
    health.latency_ms = result.call.latency_ms


def endpoint_health_check(*, endpoint: LlmEndpoint, model: str | None = None) -> EndpointHealth:
    health = EndpointHealth(endpoint=endpoint, model=model or endpoint.default_model)
    key_problem = endpoint_key_problem(endpoint)
    if key_problem:
        health.problems.append(key_problem)
        return health
    _check_models(health)
    if health.reachable:
        _check_structured_output(health)
    return health
