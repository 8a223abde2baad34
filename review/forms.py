"""Forms of the review workspace. Each refuses bad input with a message the reviewer
can act on, before any database constraint would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib.auth.models import User

from generation.models import NOTE_FIELDS, ArtefactKind, CaseStatus, GenerationBatch, QualityVariable
from generation.models.text_limits import (
    COMMENT_MAX_CHARS,
    DIALOGUE_TURN_MAX_CHARS,
    NOTE_SECTION_MAX_CHARS,
    SEARCH_MAX_CHARS,
    SURVEY_SUGGESTION_MAX_CHARS,
    VARIABLE_NAME_MAX_CHARS,
)
from generation.services.checks import CHECK_CHOICES, SEVERITY_CHOICES
from review.models import Guideline, RejectReason, ReviewAction
from review.selectors import QueueFilters
from review.services.assignments import AssignmentMode

SPEAKER_CHOICES = [("doctor", "Doctor"), ("patient", "Patient"), ("other", "Other participant")]


class SeenVersionsForm(forms.Form):
    """What the reviewer looked at: the version numbers on screen and when the item opened."""

    opened_at = forms.FloatField(required=False, widget=forms.HiddenInput)
    seen_scenario = forms.IntegerField(required=False, widget=forms.HiddenInput)
    seen_note = forms.IntegerField(required=False, widget=forms.HiddenInput)
    seen_dialogue = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def seen(self) -> dict[str, int]:
        pairs = {kind: self.cleaned_data.get(f"seen_{kind}") for kind in ArtefactKind.values}
        return {kind: number for kind, number in pairs.items() if number is not None}

    def opened(self) -> datetime | None:
        stamp = self.cleaned_data.get("opened_at")
        return datetime.fromtimestamp(stamp, tz=UTC) if stamp else None


class DecisionForm(SeenVersionsForm):
    action = forms.ChoiceField(
        choices=[(a, ReviewAction(a).label) for a in (ReviewAction.APPROVE, ReviewAction.REJECT, ReviewAction.SKIP)]
    )
    reason = forms.ChoiceField(choices=[("", "Choose a reason")] + list(RejectReason.choices), required=False)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=COMMENT_MAX_CHARS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == ReviewAction.REJECT:
            if not data.get("reason"):
                self.add_error("reason", "Choose why you reject this item.")
            if "comment" not in self.errors and not (data.get("comment") or "").strip():
                self.add_error("comment", "A rejection needs a comment: say what is wrong so it can be fixed.")
        return data


class RegenerateForm(SeenVersionsForm):
    target = forms.ChoiceField(choices=[(k, ArtefactKind(k).label) for k in ArtefactKind.values])
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=COMMENT_MAX_CHARS,
        error_messages={"required": "Tell the agent what to change: a regeneration needs a comment."},
    )


class NoteSectionForm(forms.Form):
    base_number = forms.IntegerField(widget=forms.HiddenInput)
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False, strip=False, max_length=NOTE_SECTION_MAX_CHARS
    )


class TurnForm(forms.Form):
    base_number = forms.IntegerField(widget=forms.HiddenInput)
    speaker = forms.ChoiceField(choices=SPEAKER_CHOICES)
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        strip=False,
        max_length=DIALOGUE_TURN_MAX_CHARS,
        error_messages={"required": "A turn needs some text."},
    )


class TurnOperationForm(forms.Form):
    base_number = forms.IntegerField(widget=forms.HiddenInput)


def note_section_is_known(section: str) -> bool:
    return section in NOTE_FIELDS


class QueueFilterForm(forms.Form):
    q = forms.CharField(
        required=False, max_length=SEARCH_MAX_CHARS, label="Search", widget=forms.TextInput(attrs={"type": "search"})
    )
    code = forms.CharField(required=False, max_length=10)
    chapter = forms.CharField(required=False, max_length=4)
    batch = forms.ModelChoiceField(queryset=GenerationBatch.objects.order_by("-created_at"), required=False)
    status = forms.ChoiceField(choices=[("", "Any")] + list(CaseStatus.choices), required=False)
    flagged = forms.BooleanField(required=False, label="Only with check flags")
    check = forms.ChoiceField(choices=[("", "Any")] + CHECK_CHOICES, required=False, label="Flagged by")
    severity = forms.ChoiceField(choices=[("", "Any")] + SEVERITY_CHOICES, required=False, label="Severity")
    near_duplicates = forms.BooleanField(required=False, label="Has near-duplicates")
    uncoded = forms.BooleanField(required=False, label="Code to be assigned")

    def filters(self) -> QueueFilters:
        if not self.is_valid():
            return QueueFilters()
        data = self.cleaned_data
        return QueueFilters(
            code=data["code"].strip(),
            chapter=data["chapter"].strip(),
            batch=data["batch"].pk if data["batch"] else None,
            status=data["status"],
            flagged=data["flagged"],
            search=data["q"].strip(),
            check=data["check"],
            severity=data["severity"],
            near_duplicates=data["near_duplicates"],
            uncoded=data["uncoded"],
        )


class AssignForm(forms.Form):
    stage = forms.ChoiceField(choices=[])
    reviewers: forms.ModelMultipleChoiceField[Any] = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, reviewers: Any, stages: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].queryset = reviewers  # type: ignore[attr-defined]
        self.fields["stage"].choices = stages  # type: ignore[attr-defined]


class CodeAssignForm(forms.Form):
    code = forms.CharField(
        max_length=12,
        label="ICD-10-CM code",
        error_messages={"required": "Type an ICD-10-CM code, e.g. E11.9."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. E11.9", "autocomplete": "off", "size": 10}),
    )


class QueueAssignForm(forms.Form):
    """Share out a filtered queue's unassigned cases among the chosen reviewers."""

    reviewers: forms.ModelMultipleChoiceField[Any] = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose the reviewers to share the queue among."},
    )
    mode = forms.ChoiceField(choices=AssignmentMode.choices, initial=AssignmentMode.ROUND_ROBIN, label="Share out")

    def __init__(self, *args: Any, reviewers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].queryset = reviewers  # type: ignore[attr-defined]


class SurveyForm(forms.Form):
    """One score (1-10) and an optional suggestion per active variable, plus a new-variable idea."""

    new_variable_name = forms.CharField(
        required=False, max_length=VARIABLE_NAME_MAX_CHARS, label="Suggest a new variable"
    )
    new_variable_description = forms.CharField(
        required=False,
        max_length=SURVEY_SUGGESTION_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="What it should capture",
    )

    def __init__(
        self, *args: Any, variables: list[QualityVariable], initial_answers: dict[int, Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.variables = variables
        for variable in variables:
            answer = initial_answers.get(variable.pk)
            self.fields[f"score_{variable.pk}"] = forms.IntegerField(
                min_value=1,
                max_value=10,
                label=variable.name,
                initial=answer.score if answer else None,
                widget=forms.NumberInput(attrs={"min": 1, "max": 10}),
            )
            self.fields[f"suggestion_{variable.pk}"] = forms.CharField(
                required=False,
                max_length=SURVEY_SUGGESTION_MAX_CHARS,
                label="How should it be used?",
                initial=answer.suggestion if answer else "",
                widget=forms.TextInput(),
            )

    def rows(self) -> list[tuple[QualityVariable, forms.BoundField, forms.BoundField]]:
        return [(v, self[f"score_{v.pk}"], self[f"suggestion_{v.pk}"]) for v in self.variables]

    def answers(self) -> dict[int, tuple[int, str]]:
        data = self.cleaned_data
        return {v.pk: (data[f"score_{v.pk}"], data.get(f"suggestion_{v.pk}") or "") for v in self.variables}

    def new_variable(self) -> tuple[str, str] | None:
        name = self.cleaned_data.get("new_variable_name") or ""
        return (name, self.cleaned_data.get("new_variable_description") or "") if name.strip() else None


class PublishSnapshotForm(forms.Form):
    notes = forms.CharField(required=False, max_length=COMMENT_MAX_CHARS, widget=forms.Textarea(attrs={"rows": 2}))


class GuidelineForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Guideline
        fields = ["title", "body_markdown"]
        widgets = {"body_markdown": forms.Textarea(attrs={"rows": 16})}
