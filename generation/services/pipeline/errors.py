"""What the pipeline refuses."""

from __future__ import annotations

from generation.errors import DomainError


class PipelineError(DomainError):
    """A pipeline request that the case's state does not allow."""


class RegenerationNotAllowed(PipelineError):
    pass


class AdvanceNotAllowed(PipelineError):
    pass


class RetryNotAllowed(PipelineError):
    pass
