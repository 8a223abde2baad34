"""The LLM client layer: the only code that talks to the openai SDK.

    from generation.llm import structured_completion, LlmCallError

    result = structured_completion(endpoint=endpoint, messages=[...], schema=ScenarioOutput,
                                   agent="scenario_provider", prompt_version="provider-v1", temperature=1.0,
                                   case=case, step=step)
    result.output   # a validated ScenarioOutput
    result.call     # its AgentCall row

A reply from a provider batch goes through the same validation, repair and record:
structured_completion(..., batch_reply=BatchReply(...)); generation.llm.batch_api speaks the
provider's /v1/files and /v1/batches.

Failures raise LlmCallError (kind = a CallErrorKind value, call = the last AgentCall row,
retryable = transient and worth another try later). endpoint_preflight raises LlmConfigError
before any case is created. Tests replay HTTP responses with tests/llm_replay.py.
"""

from generation.llm.client import http_client_factory, use_http_client_factory, use_sleep
from generation.llm.completion import (
    BatchReply,
    CompletionRequest,
    LlmResult,
    RetryPolicy,
    batch_reply_record_unused,
    completion_request,
    structured_completion,
    text_tokens,
)
from generation.llm.errors import LlmCallError, LlmConfigError
from generation.llm.health import EndpointHealth, endpoint_health_check
from generation.llm.preflight import endpoint_preflight

__all__ = [
    "BatchReply",
    "CompletionRequest",
    "completion_request",
    "batch_reply_record_unused",
    "EndpointHealth",
    "LlmCallError",
    "LlmConfigError",
    "LlmResult",
    "RetryPolicy",
    "endpoint_health_check",
    "endpoint_preflight",
    "http_client_factory",
    "structured_completion",
    "text_tokens",
    "use_http_client_factory",
    "use_sleep",
]
