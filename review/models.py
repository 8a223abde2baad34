"""What reviewers produce: decisions, assignments, survey answers, guidelines, and
the dataset exports and imports that admins run."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from generation.models import ArtefactVersion, Case, QualityVariable, ReviewStage, TimeStampedModel
from generation.models.base import ImmutableModel
from generation.models.text_limits import (
    COMMENT_MAX_CHARS,
    GUIDELINE_BODY_MAX_CHARS,
    GUIDELINE_TITLE_MAX_CHARS,
    SURVEY_SUGGESTION_MAX_CHARS,
    VARIABLE_NAME_MAX_CHARS,
    length_at_most,
)


class ReviewAction(models.TextChoices):
    APPROVE = "approve", "Approve"
    EDIT = "edit", "Edit, then approve"
    REJECT = "reject", "Reject"
    REGENERATE = "regenerate", "Send back for regeneration"
    SKIP = "skip", "Skip"


class RejectReason(models.TextChoices):
    FACTUALLY_WRONG = "factually_wrong", "Factually wrong"
    UNSAFE_ADVICE = "unsafe_advice", "Unsafe advice"
    WRONG_SECTION = "wrong_section", "Content in the wrong section"
    UNREALISTIC_DIALOGUE = "unrealistic_dialogue", "Unrealistic dialogue"
    CODING_MISMATCH = "coding_mismatch", "Does not match the ICD-10 code"
    PHI_RISK = "phi_risk", "PHI risk"
    OTHER = "other", "Other"


class ReviewDecision(ImmutableModel):
    """One reviewer's decision on one stage of a case, against the versions they saw."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="decisions")
    stage = models.CharField(max_length=16, choices=ReviewStage.choices)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    action = models.CharField(max_length=16, choices=ReviewAction.choices)
    scenario_version = models.ForeignKey(
        ArtefactVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note_version = models.ForeignKey(ArtefactVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    dialogue_version = models.ForeignKey(
        ArtefactVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=24, choices=RejectReason.choices, blank=True)
    comment = models.TextField(blank=True, max_length=COMMENT_MAX_CHARS)
    seconds_spent = models.PositiveIntegerField(default=0)
    is_adjudication = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("review_case", "Can review cases and record decisions"),
            ("adjudicate_case", "Can adjudicate disagreements"),
            ("assign_reviewers", "Can assign reviewers to cases"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(action=ReviewAction.REJECT) | (~models.Q(reason="") & ~models.Q(comment="")),
                name="reject_has_reason_and_comment",
            ),
            models.CheckConstraint(
                condition=~models.Q(action=ReviewAction.REGENERATE) | ~models.Q(comment=""),
                name="regenerate_has_comment",
            ),
            models.CheckConstraint(
                condition=models.Q(scenario_version__isnull=False)
                | models.Q(note_version__isnull=False)
                | models.Q(dialogue_version__isnull=False)
                | models.Q(action=ReviewAction.SKIP),
                name="decision_names_a_version",
            ),
            models.CheckConstraint(
                condition=models.Q(reason__in=["", *RejectReason.values]), name="decision_reason_valid"
            ),
            length_at_most("comment", COMMENT_MAX_CHARS, name="decision_comment_length"),
        ]
        indexes = [models.Index(fields=["case", "stage", "reviewer"], name="decision_case_stage")]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.action} {self.stage} of case {self.case_id}"


class ReviewerAssignment(TimeStampedModel):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="assignments")
    stage = models.CharField(max_length=16, choices=ReviewStage.choices)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "stage", "reviewer"], name="unique_assignment"),
        ]
        indexes = [models.Index(fields=["reviewer", "completed_at"], name="assignment_open")]


class SurveyResponse(TimeStampedModel):
    """A clinician's importance score (1-10) for one scenario variable in one round."""

    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="survey_responses")
    variable = models.ForeignKey(QualityVariable, on_delete=models.PROTECT, related_name="responses")
    round = models.PositiveSmallIntegerField(default=1)
    score = models.PositiveSmallIntegerField()
    suggestion = models.TextField(
        blank=True, max_length=SURVEY_SUGGESTION_MAX_CHARS, help_text="Free text: how this variable should be used"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinician", "variable", "round"], name="one_response_per_variable_round"),
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=10), name="survey_score_1_to_10"),
            length_at_most("suggestion", SURVEY_SUGGESTION_MAX_CHARS, name="survey_suggestion_length"),
        ]

    def __str__(self) -> str:
        return f"{self.clinician} rates {self.variable.key} {self.score}"


class VariableSuggestion(TimeStampedModel):
    """A clinician's proposal of a new scenario variable."""

    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    round = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(max_length=VARIABLE_NAME_MAX_CHARS)
    description = models.TextField(blank=True, max_length=SURVEY_SUGGESTION_MAX_CHARS)

    class Meta:
        constraints = [
            length_at_most("name", VARIABLE_NAME_MAX_CHARS, name="variable_suggestion_name_length"),
            length_at_most("description", SURVEY_SUGGESTION_MAX_CHARS, name="variable_suggestion_description_length"),
        ]

    def __str__(self) -> str:
        return self.name


class Guideline(TimeStampedModel):
    """Review guidelines shown beside every item; markdown, rendered and sanitised."""

    title = models.CharField(max_length=GUIDELINE_TITLE_MAX_CHARS)
    body_markdown = models.TextField(max_length=GUIDELINE_BODY_MAX_CHARS)
    position = models.PositiveSmallIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            length_at_most("title", GUIDELINE_TITLE_MAX_CHARS, name="guideline_title_length"),
            length_at_most("body_markdown", GUIDELINE_BODY_MAX_CHARS, name="guideline_body_length"),
        ]

    def __str__(self) -> str:
        return self.title


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DatasetExport(TimeStampedModel):
    """An export of the approved dataset, written by a background task."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    params = models.JSONField(help_text="Format, profile, filters, splits")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    file_path = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class DatasetImport(TimeStampedModel):
    """An import of existing dialogue-note pairs into the review queue."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    file_name = models.CharField(max_length=255)
    format = models.CharField(max_length=16)
    valid_only = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, blank=True, help_text="[{line, column, problem}, ...]")
    batch = models.ForeignKey(
        "generation.GenerationBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]


class CodeAssignment(TimeStampedModel):
    """A reviewer gave a case its ICD-10-CM code (a case imported with its code to be
    assigned), or changed it: who, when, from what."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="code_assignments")
    code = models.ForeignKey("generation.IcdCode", on_delete=models.PROTECT, related_name="+")
    previous_code = models.ForeignKey(
        "generation.IcdCode", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["case", "created_at"]

    def __str__(self) -> str:
        return f"case {self.case_id} coded {self.code_id} by {self.assigned_by_id}"


class EditedPart(models.TextChoices):
    """The parts of an approved pair whose edit burden is measured."""

    SUBJECTIVE = "subjective", "Subjective"
    OBJECTIVE = "objective", "Objective"
    ASSESSMENT = "assessment", "Assessment"
    PLAN = "plan", "Plan"
    DIALOGUE = "dialogue", "Dialogue"


class EditBurden(models.Model):
    """How much reviewers changed one part of an approved pair: the word-level edit distance
    between the text the agents handed to review and the text that was approved. Derived
    data, written when the pair is approved (review.services.edit_burden) because a word
    Levenshtein per case is too slow to compute while a dashboard loads; refreshed in place
    if the pair is approved again."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="edit_burdens")
    part = models.CharField(max_length=16, choices=EditedPart.choices)
    generated_version = models.ForeignKey(ArtefactVersion, on_delete=models.PROTECT, related_name="+")
    approved_version = models.ForeignKey(ArtefactVersion, on_delete=models.PROTECT, related_name="+")
    generated_words = models.PositiveIntegerField()
    approved_words = models.PositiveIntegerField()
    distance = models.PositiveIntegerField(help_text="Words inserted, deleted or substituted")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "part"], name="unique_edit_burden_per_case_part"),
            models.CheckConstraint(condition=models.Q(part__in=EditedPart.values), name="edit_burden_part_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.part} of case {self.case_id}: {self.distance} word edits"
