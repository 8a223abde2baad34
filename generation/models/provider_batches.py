"""Provider batches: agent steps sent to a provider's Batch API as one JSONL file.

A ProviderBatch row is written (PREPARING, with its lines) before anything is uploaded,
and the provider's file and batch ids are stored as soon as they are known, so a worker
that dies part way never submits the same steps twice: the next pass finds the row, and
the batch it may have created through the submission token in the batch's metadata.
"""

from __future__ import annotations

from django.db import models

from generation.models.base import TimeStampedModel
from generation.models.pipeline import AgentName


class ExecutionMode(models.TextChoices):
    """How a generation batch calls the model (GenerationBatch.config["execution"])."""

    REALTIME = "realtime", "Realtime: one call at a time, as soon as a step is ready"
    PROVIDER_BATCH = "batch", "Provider Batch API: lower price, results within the completion window"


# GenerationBatch.config key of the execution mode.
EXECUTION_CONFIG_KEY = "execution"


class ProviderBatchStatus(models.TextChoices):
    PREPARING = "preparing", "Preparing (lines chosen, not yet submitted)"
    IN_PROGRESS = "in_progress", "Submitted, in progress at the provider"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired (unfinished lines sent again)"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


PROVIDER_BATCH_OPEN_STATUSES = frozenset({ProviderBatchStatus.PREPARING, ProviderBatchStatus.IN_PROGRESS})


class ProviderBatch(TimeStampedModel):
    """One Batch API job: the waiting steps of one agent of one generation batch."""

    generation_batch = models.ForeignKey(
        "generation.GenerationBatch", on_delete=models.PROTECT, related_name="provider_batches"
    )
    agent = models.CharField(max_length=24, choices=AgentName.choices)
    endpoint = models.ForeignKey("generation.LlmEndpoint", on_delete=models.PROTECT, related_name="+")
    model = models.CharField(max_length=120)
    status = models.CharField(
        max_length=16, choices=ProviderBatchStatus.choices, default=ProviderBatchStatus.PREPARING, db_index=True
    )
    provider_status = models.CharField(max_length=32, blank=True, help_text="The status the provider reported last")
    # In the provider batch's metadata: finds a batch that was created before its id could be stored.
    submission_token = models.CharField(max_length=32, unique=True)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    input_file_id = models.CharField(max_length=128, blank=True)
    provider_batch_id = models.CharField(max_length=128, blank=True)
    output_file_id = models.CharField(max_length=128, blank=True)
    error_file_id = models.CharField(max_length=128, blank=True)
    line_count = models.PositiveIntegerField(default=0)
    succeeded_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0, help_text="Lines that failed or did not finish")
    cancel_requested = models.BooleanField(default=False)
    # A pass that sends or polls the batch holds it until then (another pass leaves it alone).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "provider batch"
        verbose_name_plural = "provider batches"
        constraints = [
            models.UniqueConstraint(
                fields=["provider_batch_id"],
                condition=~models.Q(provider_batch_id=""),
                name="unique_provider_batch_id",
            ),
            models.CheckConstraint(
                condition=models.Q(succeeded_count__lte=models.F("line_count")),
                name="provider_batch_succeeded_lte_lines",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} batch {self.provider_batch_id or self.submission_token[:8]}"


class LineStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    RECEIVED = "received", "Reply received"
    FAILED = "failed", "Failed at the provider"
    EXPIRED = "expired", "Not finished in the completion window"
    CANCELLED = "cancelled", "Cancelled"


# Lines that count against a step's budget of provider-batch submissions.
LINE_RETRY_STATUSES = frozenset({LineStatus.FAILED, LineStatus.EXPIRED})


class ProviderBatchLine(TimeStampedModel):
    """One step's request in one provider batch (custom_id = the step's idempotency key)."""

    provider_batch = models.ForeignKey(ProviderBatch, on_delete=models.PROTECT, related_name="lines")
    step = models.ForeignKey("generation.PipelineStep", on_delete=models.PROTECT, related_name="batch_lines")
    custom_id = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=LineStatus.choices, default=LineStatus.SUBMITTED)
    # The output line's "response" ({status_code, request_id, body}) or "error" object.
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["provider_batch", "id"]
        constraints = [
            models.UniqueConstraint(fields=["provider_batch", "step"], name="unique_line_per_provider_batch_step"),
            models.UniqueConstraint(fields=["provider_batch", "custom_id"], name="unique_line_custom_id"),
        ]

    def __str__(self) -> str:
        return f"{self.custom_id} in {self.provider_batch_id}"
