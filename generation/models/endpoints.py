"""LLM endpoints: where agents send their calls, and what each model costs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from generation.models.base import TimeStampedModel

MILLION = Decimal(1_000_000)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The key is sent as a bearer token to the base URL, so an endpoint may never read the
# server's own secrets, whatever LLM_API_KEY_ENV_ALLOWED lets through.
_NEVER_KEY_PREFIXES = (
    "DJANGO_",
    "DATABASE",
    "DB_",
    "POSTGRES",
    "PG",
    "MYSQL",
    "CELERY_",
    "BROKER_",
    "REDIS_",
    "AMQP_",
    "RABBITMQ_",
    "EMAIL_",
    "AXES_",
    "MEDSYNTH_",
)
_NEVER_KEY_WORDS = ("SECRET", "PASSWORD", "PASSWD")
_URL_SCHEMES = ("http", "https")


def api_key_env_problem(name: str) -> str | None:
    """Why `name` may not hold an endpoint's API key, or None when it may (blank: no key)."""
    if not name:
        return None
    allowed = settings.LLM_API_KEY_ENV_ALLOWED
    upper = name.upper()
    if not _ENV_NAME.fullmatch(name):
        return f"'{name}' is not an environment variable name (letters, digits and underscores)."
    if upper.startswith(_NEVER_KEY_PREFIXES) or any(word in upper for word in _NEVER_KEY_WORDS):
        return f"${name} holds a setting of this server, never an API key: name the variable that holds the key."
    if not any(fnmatchcase(name, pattern) for pattern in allowed):
        return (
            f"${name} is not an allowed key variable: allowed are {', '.join(allowed) or 'none'} "
            "(LLM_API_KEY_ENV_ALLOWED)."
        )
    return None


def base_url_problem(url: str) -> str | None:
    """Why an endpoint may not send its calls (and key) to `url`, or None (blank: the provider's default)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in _URL_SCHEMES or not parts.netloc:
        return f"The base URL must be an http:// or https:// address, not '{url}'."
    return None


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
    supports_batch_api = models.BooleanField(
        default=False,
        help_text="The server offers the Batch API (/v1/files, /v1/batches): batches may run in provider-batch mode",
    )

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

    def clean(self) -> None:
        # In clean(), not as field validators: the rules follow a setting, not the schema.
        problems = {"api_key_env": api_key_env_problem(self.api_key_env), "base_url": base_url_problem(self.base_url)}
        errors = {field: problem for field, problem in problems.items() if problem}
        if errors:
            raise ValidationError(errors)

    def api_key(self) -> str | None:
        """The key from the environment, or None when the variable is unset or may not hold a key
        (a row saved before the allow-list, or a setting changed since, never sends a server secret)."""
        if not self.api_key_env or api_key_env_problem(self.api_key_env):
            return None
        return os.environ.get(self.api_key_env) or None


# OpenAI's and Azure OpenAI's Batch API bill every token at half the realtime price; a model
# without its own batch prices is priced so.
DEFAULT_BATCH_PRICE_FACTOR = Decimal("0.5")
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class TokenPrices:
    """What one million tokens of each kind cost in one execution mode."""

    input: Decimal
    cached_input: Decimal
    output: Decimal

    def cost(self, *, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> Decimal:
        """Cached tokens are part of the input tokens (as the usage reports them)."""
        cached = min(cached_input_tokens, input_tokens)
        return (
            self.input * (input_tokens - cached) + self.cached_input * cached + self.output * output_tokens
        ) / MILLION


class LlmModel(models.Model):
    """A model an endpoint serves, with its prices per million tokens: realtime, and in a
    provider batch (blank: DEFAULT_BATCH_PRICE_FACTOR of the realtime price)."""

    endpoint = models.ForeignKey(LlmEndpoint, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=120)
    input_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    output_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    cached_input_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    batch_input_price_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="Blank: half the realtime input price"
    )
    batch_cached_input_price_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="Blank: half the realtime cached price"
    )
    batch_output_price_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="Blank: half the realtime output price"
    )

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

    def cost(self, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> Decimal:
        """The price of one realtime call: `cached_input_tokens` of the input at the
        cached-input price (the input price when none is set), the rest at theirs."""
        return self.prices(batch=False).cost(
            input_tokens=input_tokens, cached_input_tokens=cached_input_tokens, output_tokens=output_tokens
        )

    def prices(self, *, batch: bool) -> TokenPrices:
        """The prices of a realtime call, or of a line of a provider batch. Cached input
        without a price of its own costs as much as other input."""
        cached = self.cached_input_price_per_mtok
        realtime = TokenPrices(
            input=self.input_price_per_mtok,
            cached_input=self.input_price_per_mtok if cached is None else cached,
            output=self.output_price_per_mtok,
        )
        if not batch:
            return realtime

        def batch_price(own: Decimal | None, realtime_price: Decimal) -> Decimal:
            return realtime_price * DEFAULT_BATCH_PRICE_FACTOR if own is None else own

        return TokenPrices(
            input=batch_price(self.batch_input_price_per_mtok, realtime.input),
            cached_input=batch_price(self.batch_cached_input_price_per_mtok, realtime.cached_input),
            output=batch_price(self.batch_output_price_per_mtok, realtime.output),
        )
