"""Forms of the dataset export and import pages; each cleans into the options object
that the command line builds too, so both paths share one validation."""

from __future__ import annotations

from typing import Any

from django import forms

from generation.models import GenerationBatch
from generation.models.text_limits import CODE_LIST_MAX_CHARS, SEARCH_MAX_CHARS
from review.datasets.export import FORMATS, PROFILES, ExportFilters, ExportOptionError, ExportOptions
from review.datasets.imports import IMPORT_FORMATS
from review.datasets.near_duplicates import KEEP_ALL, KEEP_ONE
from review.datasets.splits import (
    DEFAULT_GROUP_LEVEL,
    GROUP_LEVELS,
    SPLIT_MODES,
    SplitOptionError,
    SplitPlan,
    ratios_parse,
)


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


def _csv_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


class ExportForm(forms.Form):
    fmt = forms.ChoiceField(label="Format", choices=_choices(FORMATS))
    profile = forms.ChoiceField(
        choices=_choices(PROFILES), help_text="medsynth: Note, Dialogue, ICD10, ICD10_desc; full: every field"
    )
    original_header = forms.BooleanField(required=False, label="Write the published ' Note' header (medsynth)")
    split = forms.ChoiceField(
        choices=_choices(SPLIT_MODES), initial="none", help_text="grouped: no group in two splits"
    )
    group_level = forms.ChoiceField(
        label="Grouping level",
        choices=_choices(GROUP_LEVELS),
        initial=DEFAULT_GROUP_LEVEL,
        required=False,
        help_text="grouped splits: category = first three characters (E11.9 and E11.65 are one group)",
    )
    stratify_by_chapter = forms.BooleanField(
        required=False, label="Stratify by chapter (grouped: each chapter's groups spread over the splits)"
    )
    keep_examples_together = forms.BooleanField(
        required=False,
        initial=True,
        label="Keep each in-context example in the split of the pairs generated from it (grouped)",
    )
    ratios = forms.CharField(initial="0.8,0.1,0.1", max_length=SEARCH_MAX_CHARS, help_text="train,validation,test")
    seed = forms.IntegerField(initial=0)
    batches = forms.ModelMultipleChoiceField(queryset=GenerationBatch.objects.order_by("-created_at"), required=False)
    codes = forms.CharField(
        required=False,
        max_length=CODE_LIST_MAX_CHARS,
        help_text="Comma-separated ICD-10 codes, with or without the dot",
    )
    chapters = forms.CharField(required=False, max_length=SEARCH_MAX_CHARS, help_text="Comma-separated chapter numbers")
    approved_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    approved_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    min_agreement = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum reviewer agreement")
    licence = forms.CharField(initial="other", max_length=64)
    near_duplicates = forms.ChoiceField(
        label="Near-duplicates",
        choices=[
            (KEEP_ALL, "Keep all pairs; the card reports the clusters"),
            (KEEP_ONE, "Keep one pair per cluster (the oldest); the card reports how many were dropped"),
        ],
        initial=KEEP_ALL,
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            data["options"] = ExportOptions(
                fmt=data["fmt"],
                profile=data["profile"],
                original_header=data["original_header"],
                split=SplitPlan(
                    mode=data["split"],
                    ratios=ratios_parse(data["ratios"]),
                    seed=data["seed"],
                    group_level=data["group_level"] or DEFAULT_GROUP_LEVEL,
                    stratify_by_chapter=data["stratify_by_chapter"],
                ),
                filters=ExportFilters(
                    batch_ids=tuple(batch.pk for batch in data["batches"]),
                    codes=_csv_list(data["codes"]),
                    chapters=_csv_list(data["chapters"]),
                    approved_from=data["approved_from"],
                    approved_to=data["approved_to"],
                    min_agreement=data["min_agreement"],
                ),
                licence=data["licence"].strip() or "other",
                keep_examples_together=data["keep_examples_together"],
                near_duplicates=data["near_duplicates"] or KEEP_ALL,
            )
        except (ExportOptionError, SplitOptionError) as error:
            raise forms.ValidationError(str(error)) from error
        return data


class ImportForm(forms.Form):
    file = forms.FileField()
    fmt = forms.ChoiceField(
        label="Format",
        choices=_choices(IMPORT_FORMATS),
        help_text="medsynth: MedSynth CSV; aci: ACI-Bench CSV; jsonl: this app's full export",
    )
    code = forms.CharField(
        required=False, max_length=10, help_text="One ICD-10 code for every row, for a file without a code column"
    )
    code_to_be_assigned = forms.BooleanField(
        required=False,
        label="Code to be assigned: import rows without a code (or with a retired one); reviewers assign it",
    )
    valid_only = forms.BooleanField(
        required=False, label="Import only the valid rows (default: refuse the whole file on any problem)"
    )
