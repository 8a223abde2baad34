"""django-import-export resources for the admin: the ICD-10 catalogue, the site's code
frequencies, physician roles, and a read-only export of review decisions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from generation.models import ArtefactVersion, IcdCode, PhysicianRole
from generation.services.catalogue import code_compact, codes_by_compact
from review.models import ReviewDecision


class IcdCodeResource(resources.ModelResource):
    """The catalogue as rows; `parent` is the parent's code, so a file reads without ids."""

    parent = fields.Field(
        attribute="parent", column_name="parent", widget=widgets.ForeignKeyWidget(IcdCode, field="code")
    )

    class Meta:
        model = IcdCode
        name = "ICD-10 catalogue"
        import_id_fields = ("code",)
        # Every column of the catalogue but the database id, in model order.
        fields = tuple(field.name for field in IcdCode._meta.concrete_fields if field.name != "id")
        export_order = fields
        skip_unchanged = True


class CodeFrequencyResource(resources.ModelResource):
    """code,frequency rows. Codes may come without the dot; a code outside the catalogue is
    refused (frequencies never create codes)."""

    class Meta:
        model = IcdCode
        name = "Code frequencies (code, frequency)"
        import_id_fields = ("code",)
        fields = ("code", "frequency")
        export_order = fields
        skip_unchanged = True

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        raw = str(row.get("code") or "")
        known = codes_by_compact([code_compact(raw)]).get(code_compact(raw))
        if known is None:
            raise ValidationError(f"{raw!r} is not a code in the ICD-10-CM catalogue")
        row["code"] = known.code

    def import_data(self, dataset: Any, **kwargs: Any) -> Any:
        # All or nothing, like `manage.py import_code_frequencies`: one unknown code rolls the file back.
        kwargs.setdefault("rollback_on_validation_errors", True)
        return super().import_data(dataset, **kwargs)


class PhysicianRoleResource(resources.ModelResource):
    class Meta:
        model = PhysicianRole
        name = "Physician roles"
        import_id_fields = ("name",)
        fields = ("name", "description", "is_active")
        export_order = fields
        skip_unchanged = True


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
