"""django-import-export resources of the review app's admin: a read-only export of
review decisions. (Generation's reference data has its resources in generation.resources.)"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from import_export import fields, resources, widgets

from generation.models import ArtefactVersion
from review.models import ReviewDecision


def _version_number(version: ArtefactVersion | None) -> int | None:
    return version.number if version else None


class ReviewDecisionResource(resources.ModelResource):
    """Export only: decisions are history and are never imported."""

    reviewer = fields.Field(
        attribute="reviewer", column_name="reviewer", widget=widgets.ForeignKeyWidget(get_user_model(), "username")
    )
    code = fields.Field(attribute="case__code__code", column_name="code", readonly=True)
    note_version = fields.Field(column_name="note_version", readonly=True)
    dialogue_version = fields.Field(column_name="dialogue_version", readonly=True)

    class Meta:
        model = ReviewDecision
        name = "Review decisions (export only)"
        fields = (
            "id",
            "case",
            "code",
            "stage",
            "reviewer",
            "action",
            "reason",
            "comment",
            "note_version",
            "dialogue_version",
            "seconds_spent",
            "is_adjudication",
            "created_at",
        )
        export_order = fields

    def dehydrate_note_version(self, decision: ReviewDecision) -> int | None:
        return _version_number(decision.note_version)

    def dehydrate_dialogue_version(self, decision: ReviewDecision) -> int | None:
        return _version_number(decision.dialogue_version)

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("reviewer", "case__code", "note_version", "dialogue_version")

    def import_data(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("Review decisions are history: they are exported, never imported.")
