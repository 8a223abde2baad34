from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django import forms

from generation import selectors
from generation.models import BATCH_ASSIGNMENT_REQUIRED, EXECUTION_CONFIG_KEY, ExecutionMode, LlmEndpoint, PhysicianRole
from generation.models.text_limits import CODE_LIST_MAX_CHARS, COMMENT_MAX_CHARS, DISCARD_REASON_MAX_CHARS
from generation.services.batches import MAX_BUDGET, MAX_PAIRS_PER_CODE, BatchRequest
from generation.services.code_selection import split_list
from generation.services.pipeline import GATE_STAGES, JUDGE_LLM, JUDGE_SIMILARITY_ONLY


def _endpoint_label(endpoint: LlmEndpoint) -> str:
    label = f"{endpoint.name} ({endpoint.default_model})"
    if endpoint.is_local_demo:
        label += " - local demo model: for trying the product, not clinical content"
    return label + (" - default" if endpoint.is_default else "")


class CodePickerInput(forms.TextInput):
    """The typed list of codes, with a search of the catalogue (arrow keys and Enter pick a
    code into the list) and a chip per chosen code; without JavaScript, a plain text field."""

    template_name = "generation/widgets/code_picker.html"


class CodeSelectionForm(forms.Form):
    """Which codes a batch takes and how many new pairs each gets: the batch form's code
    fields, also bound alone by the preview of the chosen codes."""

    codes = forms.CharField(
        required=False,
        max_length=CODE_LIST_MAX_CHARS,
        widget=CodePickerInput,
        help_text="Comma-separated ICD-10-CM codes, with or without the dot (I10, E11.9)",
    )
    top = forms.IntegerField(required=False, min_value=1, label="Or the top N codes by frequency")
    chapter = forms.CharField(
        required=False, max_length=CODE_LIST_MAX_CHARS, label="Chapters (1-22), optional filter, comma-separated"
    )
    blocks = forms.CharField(
        required=False, max_length=CODE_LIST_MAX_CHARS, label="Blocks, optional filter (E08-E13, I10-I1A)"
    )
    minimum_per_chapter = forms.IntegerField(
        required=False,
        min_value=0,
        label="Stratify the top N across chapters: at least this many codes per chapter",
        help_text="Each chapter first gets this minimum; the rest is shared in proportion to its frequency.",
    )
    pairs_per_code = forms.IntegerField(min_value=1, max_value=MAX_PAIRS_PER_CODE, initial=1)
    target_approved = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PAIRS_PER_CODE,
        label="Or top up to K approved pairs per code",
        help_text="Plans only what each code lacks: K - approved - underway pairs (instead of pairs per code).",
    )
    topup_per_code_cap = forms.IntegerField(required=False, min_value=1, label="Top-up: at most this many per code")
    topup_total_cap = forms.IntegerField(required=False, min_value=1, label="Top-up: at most this many in total")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        listed = bool((cleaned.get("codes") or "").strip())
        filtered = any(cleaned.get(name) for name in ("top", "chapter", "blocks"))
        if not listed and not filtered:
            raise forms.ValidationError("Give a list of codes, a top N, a chapter or a block.")
        if listed and (filtered or cleaned.get("minimum_per_chapter") is not None):
            raise forms.ValidationError("Give either a list of codes or a top N / chapter / block, not both.")
        return cleaned

    def code_request(self) -> dict[str, Any]:
        """The BatchRequest fields these answers set."""
        data = self.cleaned_data
        return {
            "codes": split_list(data.get("codes") or ""),
            "top": data.get("top"),
            "chapter": (data.get("chapter") or "").strip(),
            "blocks": split_list(data.get("blocks") or ""),
            "minimum_per_chapter": data.get("minimum_per_chapter"),
            "pairs_per_code": data["pairs_per_code"],
            "target_approved": data.get("target_approved"),
            "topup_per_code_cap": data.get("topup_per_code_cap"),
            "topup_total_cap": data.get("topup_total_cap"),
        }

    @classmethod
    def field_selector(cls) -> str:
        """A CSS selector of these fields' inputs in the batch form: what the preview sends
        (and nothing else of the form, no CSRF token in a URL)."""
        return ", ".join(f"[name={name}]" for name in cls.base_fields)

    def has_selection(self) -> bool:
        """Whether anything that chooses codes was filled in (the preview stays quiet until then)."""
        return any((self.data.get(name) or "").strip() for name in ("codes", "top", "chapter", "blocks"))


class BatchLaunchForm(CodeSelectionForm):
    endpoint = forms.ModelChoiceField(queryset=LlmEndpoint.objects.none(), empty_label=None, label="LLM endpoint")
    gates = forms.MultipleChoiceField(
        required=False,
        choices=[(stage, f"after the {stage}") for stage in GATE_STAGES],
        widget=forms.CheckboxSelectMultiple,
        label="Human review gates",
        help_text="The case waits for a clinician's approval at each gate; without gates it goes to final review.",
    )
    reviews_required = forms.IntegerField(min_value=1, max_value=10, initial=1, label="Reviews per item")
    assignment_required = forms.BooleanField(
        required=False,
        label="Only assigned reviewers",
        help_text="A case waits in no clinician's queue until an admin assigns it to reviewers.",
    )
    judge_mode = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Default: the LLM judge (the similarity check only on the local demo model)"),
            (JUDGE_LLM, "LLM judge plus the near-duplicate check"),
            (JUDGE_SIMILARITY_ONLY, "Near-duplicate check only"),
        ],
        label="Scenario judge",
    )
    execution = forms.ChoiceField(
        required=False,
        choices=ExecutionMode.choices,
        initial=ExecutionMode.REALTIME,
        label="Execution",
        help_text="Provider Batch API: about half the price, results within the provider's completion window "
        "(up to 24 h per stage); the endpoint must support it.",
    )
    role = forms.ModelChoiceField(
        queryset=PhysicianRole.objects.none(),
        required=False,
        to_field_name="name",
        empty_label="Chosen by the scenario provider",
        label="Physician role",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = selectors.active_endpoints()  # type: ignore[attr-defined]
        self.fields["endpoint"].label_from_instance = _endpoint_label  # type: ignore[attr-defined]
        self.fields["role"].queryset = PhysicianRole.objects.filter(is_active=True)  # type: ignore[attr-defined]

    @staticmethod
    def _config(data: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {"judge_mode": data["judge_mode"]} if data.get("judge_mode") else {}
        if data.get("assignment_required"):
            config[BATCH_ASSIGNMENT_REQUIRED] = True
        if data.get("execution") and data["execution"] != ExecutionMode.REALTIME:
            config[EXECUTION_CONFIG_KEY] = data["execution"]
        return config

    def batch_request(self) -> BatchRequest:
        data = self.cleaned_data
        role = data.get("role")
        return BatchRequest(
            **self.code_request(),
            endpoint_name=data["endpoint"].name,
            gates=list(data.get("gates") or []),
            reviews_required=data["reviews_required"],
            role=role.name if role else "",
            config=self._config(data),
        )


class BatchBudgetForm(forms.Form):
    """A batch's cost cap, on the launch confirmation and on the batch page."""

    budget = forms.DecimalField(
        required=False,
        min_value=Decimal("0.0001"),
        max_value=MAX_BUDGET - Decimal("0.0001"),
        max_digits=12,
        decimal_places=4,
        label="Budget cap (USD)",
        help_text="The batch pauses, and loses nothing, before a step would take its cost past this; "
        "raising the cap resumes it. Blank: no cap.",
    )


# --- Batch operations and the needs-attention queue ------------------------------------------


class RetryFailedForm(forms.Form):
    # The newest failed step the page showed: a second submit of the same form retries nothing.
    seen_up_to = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


class CaseActionForm(forms.Form):
    """A form of one case's row in the needs-attention queue: its ids name the case, and the
    page's role names come in once for all its rows, not one query per form."""

    def __init__(self, data: Mapping[str, Any] | None = None, *, case_id: int, roles: Sequence[str] = ()) -> None:
        super().__init__(data, auto_id=f"case{case_id}-%s")


class ScenarioRerunForm(CaseActionForm):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=COMMENT_MAX_CHARS,
        label="Comment for the scenario provider",
        error_messages={"required": "Say what the scenario provider should change: a rerun needs a comment."},
    )


class CaseReassignForm(CaseActionForm):
    code = forms.CharField(required=False, max_length=10, label="New ICD-10-CM code")
    role = forms.ChoiceField(required=False, label="Physician role")
    comment = forms.CharField(
        required=False,
        max_length=COMMENT_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Comment (optional: without one, a new scenario is written)",
    )

    def __init__(self, data: Mapping[str, Any] | None = None, *, case_id: int, roles: Sequence[str] = ()) -> None:
        super().__init__(data, case_id=case_id)
        self.fields["role"].choices = [("", "Keep the role"), *((name, name) for name in roles)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not (cleaned.get("code") or "").strip() and not cleaned.get("role"):
            raise forms.ValidationError("Choose a new code, a role, or both.")
        return cleaned


class CaseDiscardForm(CaseActionForm):
    reason = forms.CharField(required=False, max_length=DISCARD_REASON_MAX_CHARS, label="Why (optional)")


# The actions of a needs-attention case, by the name its view and its row use.
CASE_ACTION_FORMS: dict[str, type[CaseActionForm]] = {
    "rerun": ScenarioRerunForm,
    "reassign": CaseReassignForm,
    "discard": CaseDiscardForm,
}


def case_action_forms(
    *, case_id: int, roles: Sequence[str], bound: str = "", data: Mapping[str, Any] | None = None
) -> dict[str, CaseActionForm]:
    """A case's three action forms; the one named `bound` holds what was posted."""
    return {
        name: form_class(data if name == bound else None, case_id=case_id, roles=roles)
        for name, form_class in CASE_ACTION_FORMS.items()
    }
