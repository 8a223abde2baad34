"""structured_completion: one agent call, from messages to a validated pydantic object.

What it adds on top of a single request: the endpoint's structured-output mode, the shared
concurrency and rate limits, backoff on transient errors within a retry budget, one repair
attempt for invalid output, and an AgentCall row for every attempt."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.conf import settings
from pydantic import BaseModel

from generation import ratelimit
from generation.caching import kept_for
from generation.llm.client import AttemptFailed, Reply, hooks, send_chat_completion
from generation.llm.errors import LlmCallError
from generation.llm.schemas import (
    OutputRejected,
    messages_with_schema,
    parse_output,
    repair_messages,
    response_format_for,
)
from generation.models import AgentCall, CallErrorKind, Case, LlmEndpoint, LlmModel, PipelineStep, ProviderBatch

T = TypeVar("T", bound=BaseModel)

REDACTED = "[redacted]"
# Without max_tokens the reply size is unknown; this is what the tokens-per-minute budget assumes.
ASSUMED_REPLY_TOKENS = 512
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class LlmResult(Generic[T]):
    output: T
    call: AgentCall


@dataclass(frozen=True)
class RetryPolicy:
    """How long one structured_completion keeps trying through transient errors."""

    max_attempts: int = 5
    max_total_wait_seconds: float = 120.0
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    # How long to wait for a free slot / room in the per-minute window; None = the setting's default.
    capacity_wait_seconds: float | None = None

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_attempts=getattr(settings, "LLM_RETRY_MAX_ATTEMPTS", cls.max_attempts),
            max_total_wait_seconds=getattr(settings, "LLM_RETRY_MAX_WAIT_SECONDS", cls.max_total_wait_seconds),
        )

    def backoff(self, *, failures: int, retry_after: float | None) -> float:
        """Full jitter (uniform in [0, base * 2^n], capped); a server's Retry-After is a floor."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (failures - 1))
        jittered = random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
        return max(jittered, retry_after) if retry_after is not None else jittered


@dataclass(frozen=True)
class CompletionRequest:
    """What one agent call sends: the same body goes in a request or on a provider batch's line."""

    model: str
    messages: list[dict[str, str]]
    params: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {"model": self.model, "messages": self.messages, **self.params}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> CompletionRequest:
        params = {key: value for key, value in body.items() if key not in ("model", "messages")}
        return cls(model=str(body["model"]), messages=list(body["messages"]), params=params)


def completion_request(
    *,
    endpoint: LlmEndpoint,
    messages: list[dict[str, str]],
    schema: type[BaseModel],
    temperature: float,
    model: str | None = None,
    max_tokens: int | None = None,
) -> CompletionRequest:
    """The request for an instance of `schema`, in the endpoint's structured-output mode."""
    params: dict[str, Any] = {
        "temperature": temperature,
        "response_format": response_format_for(mode=endpoint.structured_output_mode, schema=schema),
    }
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return CompletionRequest(
        model=model or endpoint.default_model,
        messages=messages_with_schema(mode=endpoint.structured_output_mode, messages=messages, schema=schema),
        params=params,
    )


@dataclass(frozen=True)
class BatchReply:
    """The reply to `request` that came back on a line of a provider batch: it stands for
    the call's first attempt (priced at the batch price); a repair attempt is sent realtime."""

    request: CompletionRequest
    reply: Reply
    provider_batch: ProviderBatch
    custom_id: str


def pause(seconds: float) -> None:
    hooks.sleep(seconds)


@dataclass
class _Call:
    """Everything one structured_completion needs, and the attempts it has used so far."""

    endpoint: LlmEndpoint
    model: str
    schema: type[BaseModel]
    agent: str
    prompt_version: str
    params: dict[str, Any]
    case: Case | None
    step: PipelineStep | None
    policy: RetryPolicy
    attempts: int = 0
    waited_seconds: float = 0.0
    last_call: AgentCall | None = None
    price: LlmModel | None = field(default=None)
    # Runs just before each request is sent and may raise LlmCallError to send no more
    # (the pipeline stops the calls of a cancelled batch this way).
    before_attempt: Callable[[], None] | None = None
    # The provider batch line the current attempt's reply came from (None: a realtime request).
    batch_reply: BatchReply | None = None

    def estimated_tokens(self, messages: list[dict[str, str]]) -> int:
        prompt = "".join(message.get("content") or "" for message in messages)
        return text_tokens(prompt) + (self.params.get("max_tokens") or ASSUMED_REPLY_TOKENS)


def _scrub(text: str, secret: str | None) -> str:
    """Servers sometimes echo the key in an auth error; it must never reach the database."""
    return text.replace(secret, REDACTED) if secret and text else text


@kept_for("REFERENCE_CACHE_SECONDS")
def model_prices(*, endpoint_id: int, model: str) -> LlmModel | None:
    """The model's row (its prices), kept per process for REFERENCE_CACHE_SECONDS."""
    return LlmModel.objects.filter(endpoint_id=endpoint_id, name=model).first()


def _cost(price: LlmModel | None, reply: Reply | None, *, batch: bool) -> Decimal:
    if price is None or reply is None:
        return Decimal(0)
    return price.prices(batch=batch).cost(
        input_tokens=reply.input_tokens,
        cached_input_tokens=reply.cached_input_tokens,
        output_tokens=reply.output_tokens,
    )


def _batch_reply_recorded_before(call: _Call) -> bool:
    """Whether the provider-batch reply of this attempt already has its call row: a step whose
    run died after recording it reads the same line again, and the provider billed it once."""
    if call.batch_reply is None:
        return False
    line = call.batch_reply
    return AgentCall.objects.filter(provider_batch=line.provider_batch, custom_id=line.custom_id).exists()


def _record(
    call: _Call,
    *,
    messages: list[dict[str, str]],
    reply: Reply | None = None,
    failure: AttemptFailed | None = None,
    parsed: dict[str, Any] | None = None,
    error_kind: str = "",
    error: str = "",
) -> AgentCall:
    secret = call.endpoint.api_key()
    raw = (reply.refusal or reply.content or "") if reply else (failure.body if failure else "")
    billed = reply if reply is not None and not _batch_reply_recorded_before(call) else None
    row = AgentCall.objects.create(
        case=call.case,
        step=call.step,
        agent=call.agent,
        endpoint=call.endpoint,
        endpoint_name=call.endpoint.name,
        model=call.model,
        prompt_version=call.prompt_version,
        attempt=call.attempts,
        request_messages=messages,
        request_params=call.params,
        raw_response=_scrub(raw, secret),
        parsed_output=parsed,
        finish_reason=reply.finish_reason if reply else "",
        input_tokens=billed.input_tokens if billed else 0,
        output_tokens=billed.output_tokens if billed else 0,
        cached_input_tokens=billed.cached_input_tokens if billed else 0,
        latency_ms=reply.latency_ms if reply else (failure.latency_ms if failure else 0),
        cost=_cost(call.price, billed, batch=call.batch_reply is not None),
        provider_request_id=(reply.request_id if reply else (failure.request_id if failure else ""))[:128],
        provider_batch=call.batch_reply.provider_batch if call.batch_reply else None,
        custom_id=call.batch_reply.custom_id if call.batch_reply else "",
        error_kind=error_kind,
        error=_scrub(error, secret),
    )
    call.last_call = row
    return row


def _send_once(call: _Call, messages: list[dict[str, str]]) -> Reply:
    try:
        with ratelimit.endpoint_capacity(
            endpoint=call.endpoint,
            estimated_tokens=call.estimated_tokens(messages),
            sleep=pause,
            max_wait=call.policy.capacity_wait_seconds,
        ) as reservation:
            if call.before_attempt is not None:
                call.before_attempt()
            reply = send_chat_completion(
                endpoint=call.endpoint, model=call.model, messages=messages, params=call.params
            )
            reservation.settle(tokens=reply.input_tokens + reply.output_tokens)
            return reply
    except ratelimit.CapacityTimeout as error:
        raise LlmCallError(str(error), kind=CallErrorKind.RATE_LIMITED, call=call.last_call, retryable=True) from error


def _send_with_retries(call: _Call, messages: list[dict[str, str]]) -> Reply:
    """A completion, retrying transient failures; every failed attempt leaves its AgentCall row."""
    while True:
        call.attempts += 1
        try:
            return _send_once(call, messages)
        except AttemptFailed as failure:
            row = _record(call, messages=messages, failure=failure, error_kind=failure.kind, error=str(failure))
            if not failure.transient:
                raise LlmCallError(str(failure), kind=failure.kind, call=row) from failure
            delay = call.policy.backoff(failures=call.attempts, retry_after=failure.retry_after)
            out_of_attempts = call.attempts >= call.policy.max_attempts
            if out_of_attempts or call.waited_seconds + delay > call.policy.max_total_wait_seconds:
                spent = f"{call.attempts} attempts over {call.waited_seconds:.0f} s of waiting"
                message = f"{failure} Gave up after {spent}; the step can be retried later."
                raise LlmCallError(message, kind=failure.kind, call=row, retryable=True) from failure
            call.waited_seconds += delay
            pause(delay)


def _next_reply(call: _Call, conversation: list[dict[str, str]], *, batch_reply: BatchReply | None) -> Reply:
    """The reply of the call's next attempt: the provider batch's, else a request's."""
    call.batch_reply = batch_reply
    if batch_reply is None:
        return _send_with_retries(call, conversation)
    call.attempts += 1
    return batch_reply.reply


def batch_reply_record_unused(
    *,
    endpoint: LlmEndpoint,
    batch_reply: BatchReply,
    agent: str,
    prompt_version: str,
    case: Case | None,
    step: PipelineStep | None,
    reason: str,
) -> AgentCall:
    """Record (and price) a reply a provider batch brought for a step that no longer waits for
    it, say because its batch was cancelled: the provider bills it, so it is counted, never used."""
    call = _Call(
        endpoint=endpoint,
        model=batch_reply.request.model,
        schema=BaseModel,
        agent=agent,
        prompt_version=prompt_version,
        params=batch_reply.request.params,
        case=case,
        step=step,
        policy=RetryPolicy(),
        attempts=1,
        price=model_prices(endpoint_id=endpoint.pk, model=batch_reply.request.model),
        batch_reply=batch_reply,
    )
    return _record(call, messages=batch_reply.request.messages, reply=batch_reply.reply, error=reason)


def _reply_problem(reply: Reply) -> LlmCallError | None:
    """Replies that a repair prompt cannot fix."""
    if reply.refusal or reply.finish_reason == "content_filter":
        said = f": {reply.refusal}" if reply.refusal else " (content filter)."
        return LlmCallError(f"The model refused{said}", kind=CallErrorKind.REFUSAL)
    if reply.finish_reason == "length":
        return LlmCallError(
            f"The reply was cut off at {reply.output_tokens} output tokens (finish_reason=length); "
            "raise max_tokens or shorten the prompt.",
            kind=CallErrorKind.TRUNCATED,
        )
    return None


def text_tokens(text: str) -> int:
    """The tokens a text is taken to hold when no tokenizer is at hand (about 4 characters each)."""
    return len(text) // CHARS_PER_TOKEN


def structured_completion(
    *,
    endpoint: LlmEndpoint,
    messages: list[dict[str, str]],
    schema: type[T],
    agent: str,
    prompt_version: str,
    temperature: float,
    model: str | None = None,
    max_tokens: int | None = None,
    case: Case | None = None,
    step: PipelineStep | None = None,
    retry_policy: RetryPolicy | None = None,
    before_attempt: Callable[[], None] | None = None,
    batch_reply: BatchReply | None = None,
) -> LlmResult[T]:
    """Ask the endpoint for an instance of `schema`. Raises LlmCallError when none could be had.

    With `batch_reply`, its reply (from a provider batch) is the first attempt's, and the
    request it answered is the one recorded (what was sent, whatever `messages` says now);
    the reply is validated, repaired and recorded exactly as a realtime reply is.

    Call it outside any open transaction: the rows of failed attempts must survive the failure."""
    request = batch_reply.request if batch_reply else None
    request = request or completion_request(
        endpoint=endpoint, messages=messages, schema=schema, temperature=temperature, model=model, max_tokens=max_tokens
    )
    call = _Call(
        endpoint=endpoint,
        model=request.model,
        schema=schema,
        agent=agent,
        prompt_version=prompt_version,
        params=request.params,
        case=case,
        step=step,
        policy=retry_policy or RetryPolicy.from_settings(),
        price=model_prices(endpoint_id=endpoint.pk, model=request.model),
        before_attempt=before_attempt,
    )
    conversation = request.messages
    repaired = False
    while True:
        reply = _next_reply(call, conversation, batch_reply=batch_reply)
        batch_reply = None  # a repair attempt is a realtime request
        problem = _reply_problem(reply)
        if problem is not None:
            problem.call = _record(
                call, messages=conversation, reply=reply, error_kind=problem.kind, error=str(problem)
            )
            raise problem
        try:
            output = parse_output(reply.content, schema)
        except OutputRejected as rejected:
            row = _record(call, messages=conversation, reply=reply, error_kind=rejected.kind, error=str(rejected))
            if repaired:
                message = f"{rejected} (still wrong after one repair attempt; the raw reply is kept on call {row.pk})"
                raise LlmCallError(message, kind=rejected.kind, call=row) from rejected
            repaired = True
            conversation = repair_messages(conversation=conversation, bad_reply=reply.content, problem=str(rejected))
            continue
        row = _record(call, messages=conversation, reply=reply, parsed=output.model_dump(mode="json"))
        return LlmResult(output=output, call=row)
