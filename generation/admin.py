from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from import_export.admin import ImportExportModelAdmin

from generation.models import (
    AgentCall,
    ArtefactVersion,
    Case,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    LlmModel,
    PhysicianRole,
    PipelineStep,
    QualityVariable,
    SurveySnapshot,
)
from review.resources import CodeFrequencyResource, IcdCodeResource, PhysicianRoleResource


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is viewed, never changed, in the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IcdCode)
class IcdCodeAdmin(ImportExportModelAdmin):
    resource_classes = [IcdCodeResource, CodeFrequencyResource]

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("generation.change_icdcode")

    list_display = ["code", "description", "chapter", "block", "is_billable", "frequency"]
    list_filter = ["is_billable", "chapter"]
    search_fields = ["code", "code_compact", "description"]
    readonly_fields = IcdCode.CATALOGUE_FIELDS
    list_per_page = 100
    show_full_result_count = False


@admin.register(PhysicianRole)
class PhysicianRoleAdmin(ImportExportModelAdmin):
    resource_classes = [PhysicianRoleResource]

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("generation.change_physicianrole")

    list_display = ["name", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(QualityVariable)
class QualityVariableAdmin(admin.ModelAdmin):
    list_display = ["position", "name", "key", "is_active"]
    list_display_links = ["name"]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]


@admin.register(SurveySnapshot)
class SurveySnapshotAdmin(ReadOnlyAdmin):
    list_display = ["version", "respondents", "published_by", "created_at"]


class LlmModelInline(admin.TabularInline):
    model = LlmModel
    extra = 1


@admin.register(LlmEndpoint)
class LlmEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "base_url",
        "default_model",
        "structured_output_mode",
        "max_concurrency",
        "requests_per_minute",
        "is_default",
        "is_local_demo",
        "is_active",
    ]
    list_filter = ["structured_output_mode", "is_active", "is_local_demo"]
    search_fields = ["name", "base_url", "default_model"]
    inlines = [LlmModelInline]


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "status",
        "planned_count",
        "produced_count",
        "approved_count",
        "failed_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["name"]
    readonly_fields = [
        "planned_count",
        "produced_count",
        "approved_count",
        "failed_count",
        "started_at",
        "finished_at",
        "created_by",
    ]


class PipelineStepInline(admin.TabularInline):
    model = PipelineStep
    fields = readonly_fields = ("agent", "attempt", "status", "error", "started_at", "finished_at")
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["id", "code", "role", "batch", "status", "scenario_revisions", "has_check_flags", "updated_at"]
    list_filter = ["status", "has_check_flags", "batch"]
    list_select_related = ["code", "role", "batch"]
    search_fields = ["code__code", "code__description"]
    raw_id_fields = ["code"]
    readonly_fields = ["status", "status_changed_at", "lock_version", "scenario_revisions", "survey_snapshot"]
    inlines = [PipelineStepInline]


@admin.register(PipelineStep)
class PipelineStepAdmin(ReadOnlyAdmin):
    list_display = ["case", "agent", "attempt", "status", "started_at", "finished_at"]
    list_filter = ["agent", "status"]
    search_fields = ["case__id"]


@admin.register(ArtefactVersion)
class ArtefactVersionAdmin(ReadOnlyAdmin):
    list_display = ["case", "kind", "number", "source", "author", "created_at"]
    list_filter = ["kind", "source"]
    list_select_related = ["author"]
    search_fields = ["case__id", "text"]


@admin.register(AgentCall)
class AgentCallAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "case",
        "agent",
        "endpoint_name",
        "model",
        "prompt_version",
        "input_tokens",
        "output_tokens",
        "latency_ms",
        "cost",
        "error_kind",
        "created_at",
    ]
    list_filter = ["agent", "error_kind", "endpoint_name", "model"]
    search_fields = ["case__id", "provider_request_id", "error"]
