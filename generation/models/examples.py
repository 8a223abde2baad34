"""In-context examples: which approved cases an agent call was shown (provenance), and
the admins' per-chapter choices of examples (pin or exclude)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from generation.models.base import ImmutableModel, TimeStampedModel
from generation.models.pipeline import AgentCall, Case, CaseStatus


class ExampleRuleKind(models.TextChoices):
    PIN = "pin", "Pin: always an example for this chapter"
    EXCLUDE = "exclude", "Exclude: never an example for this chapter"


class ExampleRule(TimeStampedModel):
    """An admin's choice about one case as an in-context example for the prompts of the
    codes of one ICD-10 chapter. A pinned case comes first (if it is still approved and,
    for a real endpoint, free of demo text); an excluded case is never shown."""

    chapter = models.CharField(
        max_length=4,
        db_index=True,
        blank=True,
        help_text="The chapter (1-22) whose prompts the rule applies to; blank: the case's own chapter",
    )
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="example_rules")
    kind = models.CharField(max_length=8, choices=ExampleRuleKind.choices)
    note = models.CharField(max_length=200, blank=True, help_text="Why, for the other admins")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["chapter", "kind", "id"]
        verbose_name = "in-context example rule"
        constraints = [
            models.UniqueConstraint(fields=["chapter", "case"], name="one_example_rule_per_chapter_case"),
            models.CheckConstraint(condition=models.Q(kind__in=ExampleRuleKind.values), name="example_rule_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} case {self.case_id} for chapter {self.chapter}"

    def clean(self) -> None:
        if not self.case_id:
            return
        if not self.chapter.strip() and self.case.code is None:
            raise ValidationError({"chapter": "This case has no code yet: name the chapter."})
        self.chapter = self.chapter.strip() or self.case.assigned_code().chapter
        # Checked when pinning only: a case sent back later simply stops being shown.
        if self.kind == ExampleRuleKind.PIN and self.case.status != CaseStatus.APPROVED:
            raise ValidationError({"case": "Only an approved case can be pinned as an example."})


class InContextExample(ImmutableModel):
    """One approved case shown as a worked example in one agent call. The export reads
    these links to keep an example and the cases made from it in one split."""

    call = models.ForeignKey(AgentCall, on_delete=models.PROTECT, related_name="examples")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="example_uses", help_text="Generated case")
    example_case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="used_as_example")
    position = models.PositiveSmallIntegerField(help_text="1 for the first worked example of the prompt")

    class Meta:
        ordering = ["call", "position"]
        constraints = [
            models.UniqueConstraint(fields=["call", "position"], name="one_example_per_call_position"),
        ]
        indexes = [models.Index(fields=["case", "example_case"], name="example_use_case")]

    def __str__(self) -> str:
        return f"case {self.example_case_id} as example {self.position} of call {self.call_id}"
