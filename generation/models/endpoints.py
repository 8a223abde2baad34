"""LLM endpoints: where agents send their calls, and what each model costs."""

from __future__ import annotations

import os
from decimal import Decimal

from django.db import models

from generation.models.base import TimeStampedModel


class StructuredOutputMode(models.TextChoices):
    JSON_SCHEMA = "json_schema", "json_schema (OpenAI structured outputs)"
    JSON_OBJECT_SCHEMA = "json_object_schema", "json_object + schema (llama-cpp-python server)"
    JSON_OBJECT = "json_object", "json_object, validated after the call"


class LlmEndpoint(TimeStampedModel):
    name = models.SlugField(max_length=64, unique=True)
    base_url = models.URLField(max_length=300, blank=True, help_text="Blank means the provider's default URL")
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable that holds the API key (never the key itself); "
        "blank for a local server that needs none",
    )
    structured_output_mode = models.CharField(
        max_length=24, choices=StructuredOutputMode.choices, default=StructuredOutputMode.JSON_SCHEMA
    )
    default_model = models.CharField(max_length=120)
    max_concurrency = models.PositiveIntegerField(default=4, help_text="Calls in flight at once, across all workers")
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=120)
    is_local_demo = models.BooleanField(
        default=False, help_text="A small local model for trying the product, not for real data"
    )
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "LLM endpoint"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_llm_endpoint"
            ),
            models.CheckConstraint(condition=models.Q(max_concurrency__gte=1), name="llm_endpoint_concurrency_gte_1"),
        ]

    def __str__(self) -> str:
        return self.name

    def api_key(self) -> str | None:
        """The key from the environment, or None when the variable is unset."""
        if not self.api_key_env:
            return None
        return os.environ.get(self.api_key_env) or None


class LlmModel(models.Model):
    """A model an endpoint serves, with its price per million tokens."""

    endpoint = models.ForeignKey(LlmEndpoint, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=120)
    input_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    output_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    cached_input_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["endpoint", "name"]
        verbose_name = "LLM model"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "name"], name="unique_model_per_endpoint"),
            models.CheckConstraint(
                condition=models.Q(input_price_per_mtok__gte=0, output_price_per_mtok__gte=0),
                name="llm_model_prices_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint.name}/{self.name}"

    def cost(self, *, input_tokens: int, output_tokens: int) -> Decimal:
        million = Decimal(1_000_000)
        return self.input_price_per_mtok * input_tokens / million + self.output_price_per_mtok * output_tokens / million
