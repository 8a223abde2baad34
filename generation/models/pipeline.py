"""The pipeline's state: batches, cases (with their state machine), agent steps,
immutable artefact versions and the log of every LLM call."""

from __future__ import annotations

from itertools import pairwise

from django.conf import settings
from django.db import models
from django.utils import timezone

from generation.errors import DomainError
from generation.models.base import ImmutableModel, TimeStampedModel
from generation.models.catalogue import IcdCode, PhysicianRole, SurveySnapshot
from generation.models.endpoints import LlmEndpoint
from generation.models.text_limits import ARTEFACT_TEXT_MAX_CHARS, BATCH_NAME_MAX_CHARS, length_at_most


class BatchKind(models.TextChoices):
    GENERATED = "generated", "Generated"
    IMPORTED = "imported", "Imported"


class BatchStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


# A batch in these statuses starts its planned cases, and may be paused.
BATCH_STARTABLE_STATUSES = frozenset({BatchStatus.QUEUED, BatchStatus.RUNNING})
# A batch in these statuses starts no new LLM call (an admin paused or cancelled it, or it
# reached its budget cap: GenerationBatch.pause_reason says which pause).
BATCH_HOLDING_STATUSES = frozenset({BatchStatus.PAUSED, BatchStatus.CANCELLED})


class PauseReason(models.TextChoices):
    """Why a paused batch is paused: an admin's pause, or its budget cap (raising the cap resumes it)."""

    NONE = "", "Not paused"
    ADMIN = "admin", "Paused by an admin"
    BUDGET = "budget", "Paused at its budget cap"


# GenerationBatch.config key: when true, a case of the batch is reviewed only by the
# reviewers an admin assigned to its stage (and by admins).
BATCH_ASSIGNMENT_REQUIRED = "assignment_required"


class GenerationBatch(TimeStampedModel):
    name = models.CharField(max_length=BATCH_NAME_MAX_CHARS)
    kind = models.CharField(max_length=16, choices=BatchKind.choices, default=BatchKind.GENERATED)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.DRAFT, db_index=True)
    config = models.JSONField(default=dict, blank=True, help_text="Codes, pairs per code, temperatures, gates")
    endpoint = models.ForeignKey(LlmEndpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="batches")
    model = models.CharField(max_length=120, blank=True)
    reviews_required = models.PositiveSmallIntegerField(default=1)
    planned_count = models.PositiveIntegerField(default=0)
    produced_count = models.PositiveIntegerField(default=0)
    approved_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # Cases planned or generating: the batch is complete when none is left.
    in_flight_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Cost control (generation.services.estimates, generation.services.pipeline.budget).
    budget = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Cost cap: no step starts whose reserved cost would pass it (blank: no cap)",
    )
    cost_estimate = models.JSONField(null=True, blank=True, help_text="The cost estimate shown before launch")
    pause_reason = models.CharField(max_length=16, choices=PauseReason.choices, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "generation batches"
        permissions = [("launch_batch", "Can plan and launch generation batches")]
        constraints = [
            models.CheckConstraint(condition=models.Q(reviews_required__gte=1), name="batch_reviews_required_gte_1"),
            models.CheckConstraint(
                condition=models.Q(produced_count__lte=models.F("planned_count")),
                name="batch_produced_lte_planned",
            ),
            length_at_most("name", BATCH_NAME_MAX_CHARS, name="batch_name_length"),
            models.CheckConstraint(
                condition=models.Q(budget__isnull=True) | models.Q(budget__gt=0), name="batch_budget_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ReviewStage(models.TextChoices):
    SCENARIO = "scenario", "Scenario"
    NOTE = "note", "Note"
    DIALOGUE = "dialogue", "Dialogue"
    PAIR = "pair", "Final pair"


class CaseStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    SCENARIO_GENERATING = "scenario_generating", "Generating scenario"
    SCENARIO_REVIEW = "scenario_review", "Scenario awaiting review"
    NOTE_GENERATING = "note_generating", "Generating note"
    NOTE_REVIEW = "note_review", "Note awaiting review"
    DIALOGUE_GENERATING = "dialogue_generating", "Generating dialogue"
    DIALOGUE_REVIEW = "dialogue_review", "Dialogue awaiting review"
    PAIR_REVIEW = "pair_review", "Pair awaiting final review"
    ADJUDICATION = "adjudication", "Awaiting adjudication"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # An admin gave up on the case: kept with its history, out of every queue and export.
    DISCARDED = "discarded", "Discarded"


S = CaseStatus
# The case state machine: status -> the statuses it may move to. Anything else is a bug.
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PLANNED: frozenset({S.SCENARIO_GENERATING, S.PAIR_REVIEW, S.CANCELLED}),
    S.SCENARIO_GENERATING: frozenset({S.SCENARIO_REVIEW, S.NOTE_GENERATING, S.NEEDS_ATTENTION, S.FAILED, S.CANCELLED}),
    S.SCENARIO_REVIEW: frozenset({S.NOTE_GENERATING, S.SCENARIO_GENERATING, S.REJECTED, S.CANCELLED}),
    S.NOTE_GENERATING: frozenset({S.NOTE_REVIEW, S.DIALOGUE_GENERATING, S.FAILED, S.CANCELLED}),
    S.NOTE_REVIEW: frozenset({S.DIALOGUE_GENERATING, S.NOTE_GENERATING, S.REJECTED, S.CANCELLED}),
    S.DIALOGUE_GENERATING: frozenset({S.DIALOGUE_REVIEW, S.PAIR_REVIEW, S.FAILED, S.CANCELLED}),
    S.DIALOGUE_REVIEW: frozenset({S.PAIR_REVIEW, S.DIALOGUE_GENERATING, S.NOTE_GENERATING, S.REJECTED, S.CANCELLED}),
    S.PAIR_REVIEW: frozenset(
        {
            S.APPROVED,
            S.REJECTED,
            S.ADJUDICATION,
            S.SCENARIO_GENERATING,
            S.NOTE_GENERATING,
            S.DIALOGUE_GENERATING,
            S.CANCELLED,
        }
    ),
    S.ADJUDICATION: frozenset({S.APPROVED, S.REJECTED, S.NOTE_GENERATING, S.DIALOGUE_GENERATING, S.CANCELLED}),
    S.APPROVED: frozenset({S.PAIR_REVIEW}),
    S.REJECTED: frozenset({S.PAIR_REVIEW, S.SCENARIO_GENERATING, S.DISCARDED}),
    S.NEEDS_ATTENTION: frozenset({S.SCENARIO_GENERATING, S.REJECTED, S.CANCELLED, S.DISCARDED}),
    S.FAILED: frozenset({S.SCENARIO_GENERATING, S.NOTE_GENERATING, S.DIALOGUE_GENERATING, S.CANCELLED, S.DISCARDED}),
    S.CANCELLED: frozenset(),
    S.DISCARDED: frozenset(),
}

# --- Case-status groups: the one home of every "which statuses" rule ----------------------

# The stages the agents generate, in pipeline order; a batch may put a review gate after each.
GATE_STAGES = (ReviewStage.SCENARIO, ReviewStage.NOTE, ReviewStage.DIALOGUE)
# The status of a case while the agents of a stage run.
STAGE_GENERATING_STATUS: dict[str, str] = {
    ReviewStage.SCENARIO: S.SCENARIO_GENERATING,
    ReviewStage.NOTE: S.NOTE_GENERATING,
    ReviewStage.DIALOGUE: S.DIALOGUE_GENERATING,
}
GENERATING_STATUSES = frozenset(STAGE_GENERATING_STATUS.values())
# A batch is finished when none of its cases is in flight.
IN_FLIGHT_STATUSES = frozenset({S.PLANNED, *GENERATING_STATUSES})
# Cases that wait for an admin (the needs-attention queue), counted as the batch's failures.
FAILED_STATUSES = frozenset({S.FAILED, S.NEEDS_ATTENTION})
TERMINAL_STATUSES = frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.DISCARDED})
# A reviewers' final verdict moves a case to one of these for good.
VERDICT_STATUSES = frozenset({S.APPROVED, S.REJECTED})
# The review queue of each stage holds the cases in this status.
REVIEW_STATUS_BY_STAGE: dict[str, str] = {
    ReviewStage.SCENARIO: S.SCENARIO_REVIEW,
    ReviewStage.NOTE: S.NOTE_REVIEW,
    ReviewStage.DIALOGUE: S.DIALOGUE_REVIEW,
    ReviewStage.PAIR: S.PAIR_REVIEW,
}
# The stage a case in this status is reviewed at; a disputed pair is adjudicated as a pair.
REVIEW_STAGE_BY_STATUS: dict[str, str] = {
    **{status: stage for stage, status in REVIEW_STATUS_BY_STAGE.items()},
    S.ADJUDICATION: ReviewStage.PAIR,
}
# What follows a generated stage once it is done (and approved, when it is gated).
NEXT_STAGE: dict[str, str] = {
    ReviewStage.SCENARIO: ReviewStage.NOTE,
    ReviewStage.NOTE: ReviewStage.DIALOGUE,
    ReviewStage.DIALOGUE: ReviewStage.PAIR,
}
# The statuses from which a reviewer may send each stage back for regeneration.
REGENERATE_FROM: dict[str, frozenset[str]] = {
    ReviewStage.SCENARIO: frozenset({S.SCENARIO_REVIEW, S.PAIR_REVIEW, S.REJECTED, S.NEEDS_ATTENTION, S.FAILED}),
    ReviewStage.NOTE: frozenset({S.NOTE_REVIEW, S.DIALOGUE_REVIEW, S.PAIR_REVIEW, S.ADJUDICATION, S.FAILED}),
    ReviewStage.DIALOGUE: frozenset({S.DIALOGUE_REVIEW, S.PAIR_REVIEW, S.ADJUDICATION, S.FAILED}),
}


class InvalidTransition(DomainError):
    """A status change that the case state machine does not allow (or that another
    request made first); refused with a message the person who asked can read."""


class CodeNotAssigned(DomainError):
    """The case was imported without a code, and what was asked needs one."""


# How a case without a code yet is shown.
CODE_TO_BE_ASSIGNED = "code to be assigned"


class Case(TimeStampedModel):
    """One dialogue-note pair in the making."""

    batch = models.ForeignKey(GenerationBatch, on_delete=models.PROTECT, related_name="cases")
    # None: imported without a code ("code to be assigned"); a reviewer assigns one before approval.
    code = models.ForeignKey(IcdCode, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    slot = models.PositiveIntegerField(help_text="The k-th pair of this code in the batch")
    role = models.ForeignKey(PhysicianRole, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=24, choices=CaseStatus.choices, default=CaseStatus.PLANNED)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # When the case's current review round began: the later of its last status change and
    # the last change of its content (a version that can be current). Kept by the services
    # of generation.services.cases, so the review queues read a column instead of looking
    # for every case's newest version.
    round_started_at = models.DateTimeField(default=timezone.now)
    survey_snapshot = models.ForeignKey(
        SurveySnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="cases"
    )
    reviews_required = models.PositiveSmallIntegerField(default=1)
    scenario_revisions = models.PositiveSmallIntegerField(default=0, help_text="Judge rejections so far")
    role_fixed = models.BooleanField(
        default=False, help_text="An admin chose the role: the scenario provider writes for it"
    )
    has_check_flags = models.BooleanField(default=False, help_text="An automatic check flagged the latest versions")
    # The queue filters' index of the current versions' findings: " code:severity " tokens
    # (generation.services.checks.check_summary), rewritten together with has_check_flags.
    check_summary = models.CharField(max_length=2000, blank=True, default="")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "code", "slot"], name="unique_case_slot_per_batch_code"),
            models.CheckConstraint(condition=models.Q(status__in=CaseStatus.values), name="case_status_valid"),
            models.CheckConstraint(condition=models.Q(reviews_required__gte=1), name="case_reviews_required_gte_1"),
            # What is approved is exported, and every exported pair has its code.
            models.CheckConstraint(
                condition=~models.Q(status=CaseStatus.APPROVED) | models.Q(code__isnull=False),
                name="approved_case_has_code",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "id"], name="case_queue"),
            models.Index(fields=["batch", "status"], name="case_batch_status"),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.code.code if self.code else CODE_TO_BE_ASSIGNED})"

    def assigned_code(self) -> IcdCode:
        """The case's code, refusing a case imported with its code to be assigned: the agents
        write for a code, and only a case with one can be approved (approved_case_has_code)."""
        if self.code is None:
            raise CodeNotAssigned(
                f"Case {self.pk} has no ICD-10-CM code yet: a reviewer assigns one on its review page first."
            )
        return self.code

    def can_transition_to(self, status: str) -> bool:
        return status in CASE_TRANSITIONS[self.status]

    def ensure_transition(self, status: str) -> None:
        if not self.can_transition_to(status):
            raise InvalidTransition(f"Case {self.pk}: {self.status} -> {status} is not allowed.")


class AgentName(models.TextChoices):
    SCENARIO_PROVIDER = "scenario_provider", "Scenario provider"
    SCENARIO_JUDGE = "scenario_judge", "Scenario judge"
    NOTE_WRITER = "note_writer", "Note writer"
    NOTE_POLISHER = "note_polisher", "Note polisher"
    DIALOGUE_GENERATOR = "dialogue_generator", "Dialogue generator"
    DIALOGUE_POLISHER = "dialogue_polisher", "Dialogue polisher"


A = AgentName
# The agents of each generated stage, in the order they run.
STAGE_AGENTS: dict[str, tuple[str, ...]] = {
    ReviewStage.SCENARIO: (A.SCENARIO_PROVIDER, A.SCENARIO_JUDGE),
    ReviewStage.NOTE: (A.NOTE_WRITER, A.NOTE_POLISHER),
    ReviewStage.DIALOGUE: (A.DIALOGUE_GENERATOR, A.DIALOGUE_POLISHER),
}
STAGE_FIRST_AGENT: dict[str, str] = {stage: agents[0] for stage, agents in STAGE_AGENTS.items()}
AGENT_STAGE: dict[str, str] = {agent: stage for stage, agents in STAGE_AGENTS.items() for agent in agents}
# The agent that runs after this one within its stage (none after the stage's last agent).
NEXT_AGENT: dict[str, str] = dict(pair for agents in STAGE_AGENTS.values() for pair in pairwise(agents))
# The status a case must be in while this agent runs.
AGENT_GENERATING_STATUS: dict[str, str] = {
    agent: STAGE_GENERATING_STATUS[stage] for agent, stage in AGENT_STAGE.items()
}


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    # Its request is written and waits for (or is in) a provider batch (generation.models.provider_batches).
    BATCHED = "batched", "Waiting for a provider batch"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class PipelineStep(TimeStampedModel):
    """One agent run for one case. (case, agent, attempt) is the idempotency key."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="steps")
    agent = models.CharField(max_length=24, choices=AgentName.choices)
    attempt = models.PositiveSmallIntegerField(default=1, help_text="1, then one more per revision or regeneration")
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    feedback = models.TextField(blank=True, help_text="Judge or reviewer feedback passed into the prompt")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    result = models.JSONField(null=True, blank=True, help_text="The agent's decision, e.g. the judge's verdict")
    output_version = models.ForeignKey(
        "ArtefactVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Liveness (generation.services.pipeline.leases): a RUNNING step belongs to the run that
    # holds its lease; once the lease has expired, another run may take the step over.
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When its task message was last sent")
    lease_token = models.CharField(max_length=32, blank=True, help_text="The claim of the run that holds the step")
    lease_owner = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker process running it")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claim_count = models.PositiveSmallIntegerField(default=0, help_text="Runs started, takeovers included")
    # What the step may cost, held against its batch's budget cap while it runs.
    reserved_cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    # Provider-batch mode: the request the step's agent makes (model, messages, params), and
    # the provider batch it is in while BATCHED (none while it waits for the next one).
    batch_request = models.JSONField(null=True, blank=True)
    provider_batch = models.ForeignKey(
        "ProviderBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="steps"
    )

    class Meta:
        ordering = ["case", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["case", "agent", "attempt"], name="unique_step_per_case_agent_attempt"),
            models.CheckConstraint(condition=models.Q(attempt__gte=1), name="step_attempt_gte_1"),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="step_status")]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.agent}#{self.attempt}"

    @property
    def idempotency_key(self) -> str:
        """(case, agent, attempt) as text: a provider batch line's custom_id."""
        return f"case{self.case_id}-{self.agent}-{self.attempt}"


class ArtefactKind(models.TextChoices):
    SCENARIO = "scenario", "Scenario"
    NOTE = "note", "SOAP note"
    DIALOGUE = "dialogue", "Dialogue"


class VersionSource(models.TextChoices):
    LLM_RAW = "llm_raw", "LLM (raw)"
    LLM_POLISHED = "llm_polished", "LLM (polished)"
    REGENERATED = "regenerated", "Regenerated"
    # A polisher's output in a chain a reviewer asked for: what the reviewer gets back.
    REGENERATED_POLISHED = "regenerated_polished", "Regenerated (polished)"
    HUMAN_EDIT = "human_edit", "Human edit"
    HUMAN_DRAFT = "human_draft", "Unsaved human draft (conflicting edit)"
    IMPORTED = "imported", "Imported"


# Finished work handed to review: a polisher's output (first run or regeneration) or an
# import. Raw agent output is a step on the way there.
DELIVERED_SOURCES = frozenset({VersionSource.LLM_POLISHED, VersionSource.REGENERATED_POLISHED, VersionSource.IMPORTED})


def delivers_pair(*, kind: str, source: str) -> bool:
    """Whether a version of this kind and source makes its case a produced pair: a dialogue handed
    to review (polished or imported), not raw agent output waiting for its polisher."""
    return kind == ArtefactKind.DIALOGUE and source in DELIVERED_SOURCES


class ArtefactVersion(ImmutableModel):
    """One immutable version of a case's scenario, note or dialogue."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="versions")
    kind = models.CharField(max_length=16, choices=ArtefactKind.choices)
    number = models.PositiveIntegerField(help_text="1, 2, ... per case and kind")
    source = models.CharField(max_length=24, choices=VersionSource.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    agent_call = models.ForeignKey(
        "AgentCall", null=True, blank=True, on_delete=models.PROTECT, related_name="versions"
    )
    content = models.JSONField(help_text="Structured content: scenario fields, SOAP sections or dialogue turns")
    text = models.TextField(help_text="Rendered text, through the one rendering path")
    check_flags = models.JSONField(default=list, blank=True, help_text="Automatic check findings")
    # {check code: check version} of every check that last ran on this version, found or not:
    # what `manage.py run_checks` compares with the registry. Derived data, so it and
    # check_flags are refreshed in place (generation.services.checks) while the text never is.
    check_versions = models.JSONField(default=dict, blank=True, help_text="The check versions that ran")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["case", "kind", "number"]
        constraints = [
            models.UniqueConstraint(fields=["case", "kind", "number"], name="unique_version_number"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="version_number_gte_1"),
            models.CheckConstraint(condition=models.Q(kind__in=ArtefactKind.values), name="version_kind_valid"),
            models.CheckConstraint(condition=models.Q(source__in=VersionSource.values), name="version_source_valid"),
            models.CheckConstraint(
                condition=~models.Q(source__in=[VersionSource.HUMAN_EDIT, VersionSource.HUMAN_DRAFT])
                | models.Q(author__isnull=False),
                name="human_version_has_author",
            ),
            length_at_most("text", ARTEFACT_TEXT_MAX_CHARS, name="version_text_length"),
        ]
        indexes = [
            models.Index(fields=["case", "kind", "-number"], name="version_latest"),
            # "When did this case's content last change" (the review round's start) for every
            # case of a queue page: without it PostgreSQL walks the global created_at index.
            models.Index(fields=["case", "-created_at"], name="version_case_newest"),
            # "Was the case's dialogue delivered", "has it a human edit", once per case over
            # tens of thousands of cases (the dashboards): answered from the index alone.
            models.Index(fields=["case", "kind", "source"], name="version_case_kind_source"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.number} of case {self.case_id}"


class CallErrorKind(models.TextChoices):
    NONE = "", "None"
    RATE_LIMITED = "rate_limited", "Rate limited (429)"
    SERVER_ERROR = "server_error", "Server error (5xx)"
    TIMEOUT = "timeout", "Timeout"
    CONNECTION = "connection", "Connection error"
    MALFORMED_JSON = "malformed_json", "Malformed JSON"
    SCHEMA_INVALID = "schema_invalid", "JSON not matching the schema"
    TRUNCATED = "truncated", "Truncated (finish_reason=length)"
    REFUSAL = "refusal", "Refusal"
    NOT_FOUND = "not_found", "Unknown model or URL (404)"
    AUTH = "auth", "Authentication or permission"
    BAD_REQUEST = "bad_request", "Bad request"


class AgentCall(ImmutableModel):
    """The record of one LLM call: what was sent, what came back, what it cost."""

    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="agent_calls")
    step = models.ForeignKey(PipelineStep, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    agent = models.CharField(max_length=24, blank=True, help_text="Blank for a health check call")
    endpoint = models.ForeignKey(LlmEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    endpoint_name = models.CharField(max_length=64)
    model = models.CharField(max_length=120)
    prompt_version = models.CharField(max_length=64, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1, help_text="2 for the repair attempt")
    request_messages = models.JSONField()
    request_params = models.JSONField(default=dict, help_text="Temperature, response format, max tokens")
    raw_response = models.TextField(blank=True)
    parsed_output = models.JSONField(null=True, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    provider_request_id = models.CharField(max_length=128, blank=True)
    # A reply that came in a provider batch's output file: the batch, and the line's custom_id.
    provider_batch = models.ForeignKey(
        "ProviderBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="calls"
    )
    custom_id = models.CharField(max_length=100, blank=True)
    error_kind = models.CharField(max_length=24, choices=CallErrorKind.choices, blank=True, default="")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["case", "agent"], name="call_case_agent"),
            # Tokens and cost per model (the dashboards) summed from the index alone: a call's
            # row carries its whole prompt and reply, far too much to read for a sum.
            models.Index(fields=["model", "case", "input_tokens", "output_tokens", "cost"], name="call_cost_by_model"),
        ]

    def __str__(self) -> str:
        return f"{self.agent or 'check'} call {self.pk} ({self.model})"

    @property
    def succeeded(self) -> bool:
        return not self.error_kind and self.parsed_output is not None
