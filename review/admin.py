from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from import_export.admin import ExportMixin

from medsynth_site.admin import ReadOnlyAdmin
from review.models import (
    DatasetExport,
    DatasetImport,
    Guideline,
    ReviewDecision,
    ReviewerAssignment,
    SurveyResponse,
    VariableSuggestion,
)
from review.resources import ReviewDecisionResource


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [ReviewDecisionResource]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("review.view_reviewdecision")

    list_display = ["case", "stage", "reviewer", "action", "reason", "seconds_spent", "is_adjudication", "created_at"]
    list_filter = ["stage", "action", "reason", "is_adjudication"]
    list_select_related = ["reviewer", "case__code"]
    search_fields = ["case__id", "comment", "reviewer__username"]


@admin.register(ReviewerAssignment)
class ReviewerAssignmentAdmin(admin.ModelAdmin):
    list_display = ["case", "stage", "reviewer", "assigned_by", "completed_at"]
    list_filter = ["stage"]
    list_select_related = ["case__code", "reviewer", "assigned_by"]
    raw_id_fields = ["case"]
    search_fields = ["reviewer__username", "case__id"]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyAdmin):
    list_display = ["clinician", "variable", "round", "score", "updated_at"]
    list_filter = ["round", "variable"]
    search_fields = ["clinician__username", "suggestion"]


@admin.register(VariableSuggestion)
class VariableSuggestionAdmin(ReadOnlyAdmin):
    list_display = ["name", "clinician", "round", "created_at"]
    search_fields = ["name", "description"]


@admin.register(Guideline)
class GuidelineAdmin(admin.ModelAdmin):
    list_display = ["position", "title", "updated_by", "updated_at"]
    list_display_links = ["title"]
    search_fields = ["title", "body_markdown"]


@admin.register(DatasetExport)
class DatasetExportAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "rows_done", "rows_total", "created_by", "created_at", "finished_at"]
    list_filter = ["status"]


@admin.register(DatasetImport)
class DatasetImportAdmin(ReadOnlyAdmin):
    list_display = ["id", "file_name", "format", "status", "rows_imported", "rows_total", "created_by", "created_at"]
    list_filter = ["status", "format"]
