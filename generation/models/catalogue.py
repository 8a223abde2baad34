"""What generation draws on: the ICD-10-CM catalogue, physician roles, the scenario
variables and the clinicians' published survey weights."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models

from generation.models.base import TimeStampedModel
from generation.models.text_limits import COMMENT_MAX_CHARS, ROLE_DESCRIPTION_MAX_CHARS, length_at_most

# What people wrap a typed or pasted code in (spaces, tabs, quotes from a spreadsheet).
CODE_WRAPPING = " \t\"'`"
_ICD9_NUMERIC = re.compile(r"^\d{3}(\.?\d{1,2})?$")  # 250.00, 4019
_ICD9_E_OR_V = re.compile(r"^(E\d{3}(\.?\d)?|V\d{2}(\.?\d{1,2})?)$")  # E849.0, V7231


def code_compact(raw: str) -> str:
    """'  "e11.9" ' -> 'E119': a code without its dot, the key every code lookup uses
    (IcdCode.code_compact holds it for each code of the catalogue)."""
    return raw.strip(CODE_WRAPPING).replace(".", "").replace(" ", "").upper()


def looks_like_icd9(raw: str) -> bool:
    cleaned = raw.strip(CODE_WRAPPING).upper()
    return bool(_ICD9_NUMERIC.match(cleaned) or _ICD9_E_OR_V.match(cleaned))


class IcdCode(models.Model):
    """One ICD-10-CM code (category or below) from the official tabular list."""

    code = models.CharField(max_length=10, unique=True, help_text="With the dot, e.g. E11.9")
    code_compact = models.CharField(max_length=10, unique=True, help_text="Without the dot, e.g. E119")
    description = models.CharField(max_length=512)
    chapter = models.CharField(max_length=4, db_index=True, help_text="Chapter number, 1-22")
    chapter_title = models.CharField(max_length=255)
    block = models.CharField(max_length=16, db_index=True, help_text="Block range, e.g. E08-E13")
    block_title = models.CharField(max_length=255)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    depth = models.PositiveSmallIntegerField(help_text="1 for a three-character category")
    is_billable = models.BooleanField(db_index=True)
    frequency = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Imported count from the site's own claims data"
    )

    # The fields that come from the official tabular list (the rest is the site's own data).
    CATALOGUE_FIELDS = (
        "code",
        "code_compact",
        "description",
        "chapter",
        "chapter_title",
        "block",
        "block_title",
        "parent",
        "depth",
        "is_billable",
    )

    class Meta:
        ordering = ["code"]
        verbose_name = "ICD-10 code"
        indexes = [
            models.Index(fields=["-frequency"], name="icd_frequency_desc", condition=models.Q(frequency__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class PhysicianRole(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # Goes into the scenario provider's prompt.
    description = models.TextField(blank=True, max_length=ROLE_DESCRIPTION_MAX_CHARS)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [length_at_most("description", ROLE_DESCRIPTION_MAX_CHARS, name="role_description_length")]

    def __str__(self) -> str:
        return self.name


class QualityVariable(models.Model):
    """One of the scenario variables that the provider fills and clinicians rate."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField()
    sub_items = models.JSONField(default=list, blank=True, help_text="List of the details the variable covers")
    position = models.PositiveSmallIntegerField(help_text="Order in the paper's survey")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.name


class SurveySnapshot(TimeStampedModel):
    """Aggregated survey weights, published by an admin; generations use the latest."""

    version = models.PositiveIntegerField(unique=True)
    weights = models.JSONField(help_text='{"variable_key": mean score, ...}')
    spread = models.JSONField(default=dict, help_text='{"variable_key": standard deviation, ...}')
    respondents = models.PositiveIntegerField(default=0)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notes = models.TextField(blank=True, max_length=COMMENT_MAX_CHARS)

    class Meta:
        ordering = ["-version"]
        constraints = [length_at_most("notes", COMMENT_MAX_CHARS, name="snapshot_notes_length")]

    def __str__(self) -> str:
        return f"Survey v{self.version}"
