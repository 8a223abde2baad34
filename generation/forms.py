from __future__ import annotations

from typing import Any

from django import forms

from generation.models import LlmEndpoint, PhysicianRole
from generation.services.batches import MAX_PAIRS_PER_CODE, BatchRequest
from generation.services.pipeline import GATE_STAGES, JUDGE_LLM, JUDGE_SIMILARITY_ONLY


def _endpoint_label(endpoint: LlmEndpoint) -> str:
    label = f"{endpoint.name} ({endpoint.default_model})"
    if endpoint.is_local_demo:
        label += " - local demo model: for trying the product, not clinical content"
    return label + (" - default" if endpoint.is_default else "")


class BatchLaunchForm(forms.Form):
    codes = forms.CharField(
        required=False, help_text="Comma-separated ICD-10-CM codes, with or without the dot (I10, E11.9)"
    )
    top = forms.IntegerField(required=False, min_value=1, label="Or the top N codes by frequency")
    chapter = forms.CharField(required=False, max_length=4, label="Chapter (1-22), optional filter for top N")
    pairs_per_code = forms.IntegerField(min_value=1, max_value=MAX_PAIRS_PER_CODE, initial=1)
    endpoint = forms.ModelChoiceField(queryset=LlmEndpoint.objects.none(), empty_label=None, label="LLM endpoint")
    gates = forms.MultipleChoiceField(
        required=False,
        choices=[(stage, f"after the {stage}") for stage in GATE_STAGES],
        widget=forms.CheckboxSelectMultiple,
        label="Human review gates",
        help_text="The case waits for a clinician's approval at each gate; without gates it goes to final review.",
    )
    reviews_required = forms.IntegerField(min_value=1, max_value=10, initial=1, label="Reviews per item")
    judge_mode = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Default: the LLM judge (the similarity check only on the local demo model)"),
            (JUDGE_LLM, "LLM judge plus the near-duplicate check"),
            (JUDGE_SIMILARITY_ONLY, "Near-duplicate check only"),
        ],
        label="Scenario judge",
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
        endpoints = LlmEndpoint.objects.filter(is_active=True).order_by("-is_default", "name")
        self.fields["endpoint"].queryset = endpoints  # type: ignore[attr-defined]
        self.fields["endpoint"].label_from_instance = _endpoint_label  # type: ignore[attr-defined]
        self.fields["role"].queryset = PhysicianRole.objects.filter(is_active=True)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not (cleaned.get("codes") or "").strip() and not cleaned.get("top") and not cleaned.get("chapter"):
            raise forms.ValidationError("Give a list of codes, a top N, or a chapter.")
        if (cleaned.get("codes") or "").strip() and (cleaned.get("top") or cleaned.get("chapter")):
            raise forms.ValidationError("Give either a list of codes or a top N / chapter, not both.")
        return cleaned

    def batch_request(self) -> BatchRequest:
        data = self.cleaned_data
        role = data.get("role")
        return BatchRequest(
            codes=[code for code in (data.get("codes") or "").split(",") if code.strip()],
            top=data.get("top"),
            chapter=(data.get("chapter") or "").strip(),
            pairs_per_code=data["pairs_per_code"],
            endpoint_name=data["endpoint"].name,
            gates=list(data.get("gates") or []),
            reviews_required=data["reviews_required"],
            role=role.name if role else "",
            config={"judge_mode": data["judge_mode"]} if data.get("judge_mode") else {},
        )
