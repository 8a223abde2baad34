"""Shared bookkeeping of the database-backed LLM rate limiter (generation/ratelimit.py)."""

from __future__ import annotations

from django.db import models

from generation.models.endpoints import LlmEndpoint


class LeaseKind(models.TextChoices):
    SLOT = "slot", "Concurrency slot (a call in flight)"
    REQUEST = "request", "Request in the last minute"


class LlmRateLease(models.Model):
    """A call in flight (slot) or a request counted against the per-minute limits.

    Every row expires: a worker that dies mid-call frees its slot when the lease runs out."""

    endpoint = models.ForeignKey(LlmEndpoint, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=LeaseKind.choices)
    lease_id = models.CharField(max_length=32, unique=True)
    tokens = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "LLM rate lease"
        indexes = [models.Index(fields=["endpoint", "kind", "expires_at"], name="rate_lease_window")]

    def __str__(self) -> str:
        return f"{self.kind} {self.lease_id} on endpoint {self.endpoint_id}"
