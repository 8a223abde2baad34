"""The two ways an LLM call can fail, as the pipeline sees them."""

from __future__ import annotations

from generation.models import AgentCall


class LlmConfigError(Exception):
    """The endpoint cannot be used as configured (missing key, model not served, unreachable).

    Raised before any case is created, so the message is written for the person who configured it."""


class LlmCallError(Exception):
    """A call that produced no valid output.

    `kind` is a CallErrorKind value; `call` is the last AgentCall row written (its raw text is kept
    there); `retryable` is True only for transient errors (429, 5xx, timeouts, connection resets)
    that outlasted the retry budget, i.e. trying the whole step again later may well succeed."""

    def __init__(self, message: str, *, kind: str, call: AgentCall | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.call = call
        self.retryable = retryable
