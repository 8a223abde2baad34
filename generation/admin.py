from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.db.models import QuerySet
from django.forms.formsets import BaseFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from import_export.admin import ImportExportModelAdmin
from import_export.forms import ImportForm

from generation.models import (
    AgentCall,
    ArtefactVersion,
    Case,
    ExampleRule,
    GenerationBatch,
    IcdCode,
    InContextExample,
    LlmEndpoint,
    LlmModel,
    PhysicianRole,
    PipelineStep,
    ProviderBatch,
    ProviderBatchLine,
    QualityVariable,
    SurveySnapshot,
)
from generation.resources import CodeFrequencyResource, IcdCodeResource, PhysicianRoleResource
from generation.services.batch_counters import batch_counters_recount
from generation.services.catalogue import FrequencyFileError, code_frequencies_import
from medsynth_site.admin import ReadOnlyAdmin
from medsynth_site.uploads import read_whole_size_validate


class CodeFrequencyUploadForm(forms.Form):
    file = forms.FileField(
        validators=[read_whole_size_validate],
        help_text="CSV with the header code,count[,description]; codes with or without the dot. "
        "Replaces every previously imported frequency.",
    )
    delimiter = forms.ChoiceField(choices=[(",", "comma"), (";", "semicolon"), ("\t", "tab")], initial=",")


class BoundedImportForm(ImportForm):
    """django-import-export reads the uploaded file whole: it gets the admin imports' limit."""

    def clean_import_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["import_file"]
        read_whole_size_validate(upload)
        return upload


_MESSAGE_LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "info": messages.INFO}


@admin.register(IcdCode)
class IcdCodeAdmin(ImportExportModelAdmin):
    import_form_class = BoundedImportForm
    resource_classes = [IcdCodeResource, CodeFrequencyResource]
    import_export_change_list_template = "admin/generation/icdcode/change_list.html"
    list_display = ["code", "description", "chapter", "block", "is_billable", "frequency"]
    list_filter = ["is_billable", "chapter"]
    search_fields = ["code", "code_compact", "description"]
    readonly_fields = IcdCode.CATALOGUE_FIELDS
    list_per_page = 100
    show_full_result_count = False

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("generation.change_icdcode")

    def get_import_resource_classes(self, request: HttpRequest) -> list[type]:
        # Frequencies come in through code_frequencies_import (frequencies_import_view), the
        # same service as `manage.py import_code_frequencies`, so the resource only exports.
        return [IcdCodeResource]

    def get_urls(self) -> list[URLPattern]:
        upload = path(
            "import-frequencies/",
            self.admin_site.admin_view(self.frequencies_import_view),
            name="generation_icdcode_import_frequencies",
        )
        return [upload, *super().get_urls()]

    def frequencies_import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = CodeFrequencyUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = code_frequencies_import(data=upload.read(), delimiter=form.cleaned_data["delimiter"])
            except FrequencyFileError as error:
                form.add_error("file", f"{upload.name}: {error}")
            else:
                for level, message in result.report():
                    messages.add_message(request, _MESSAGE_LEVELS[level], message)
                return redirect("admin:generation_icdcode_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import code frequencies",
            "form": form,
        }
        return TemplateResponse(request, "admin/generation/icdcode/import_frequencies.html", context)


@admin.register(PhysicianRole)
class PhysicianRoleAdmin(ImportExportModelAdmin):
    import_form_class = BoundedImportForm
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


class ConfirmationField(forms.CharField):
    """A value typed again to confirm a change: not a change itself, so not in the history."""

    def has_changed(self, initial: object, data: object) -> bool:
        return False


class LlmEndpointAdminForm(forms.ModelForm):
    # The key is sent to the base URL: a changed URL must not receive it unnoticed.
    confirm_api_key_env = ConfirmationField(
        required=False,
        label="Confirm the key variable",
        help_text="When you change the base URL, type the name of the key variable again: "
        "its key will be sent to the new address.",
    )

    # No Meta: the admin builds the form for LlmEndpoint with its own field list.

    def clean(self) -> dict[str, object] | None:
        cleaned = super().clean()
        key_env = self.cleaned_data.get("api_key_env")
        typed_again = (self.cleaned_data.get("confirm_api_key_env") or "").strip()
        url_changed = self.instance.pk is not None and "base_url" in self.changed_data
        if url_changed and key_env and typed_again != key_env:
            self.add_error(
                "confirm_api_key_env",
                "The base URL changed: type the key variable's name again to send its key to the new address.",
            )
        return cleaned


@admin.register(LlmEndpoint)
class LlmEndpointAdmin(admin.ModelAdmin):
    form = LlmEndpointAdminForm
    # An address typed without a scheme gets https (Django 6's default): the key travels encrypted.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name",
        "base_url",
        "default_model",
        "structured_output_mode",
        "max_concurrency",
        "requests_per_minute",
        "is_default",
        "is_local_demo",
        "supports_batch_api",
        "is_active",
    ]
    list_filter = ["structured_output_mode", "is_active", "is_local_demo", "supports_batch_api"]
    search_fields = ["name", "base_url", "default_model"]
    inlines = [LlmModelInline]

    def get_fields(
        self, request: HttpRequest, obj: LlmEndpoint | None = None
    ) -> list[str | list[str] | tuple[str, ...]]:
        fields = [name for name in super().get_fields(request, obj) if name != "confirm_api_key_env"]
        if obj is None:
            return fields  # a new endpoint has no address to change
        after_key = fields.index("api_key_env") + 1
        return [*fields[:after_key], "confirm_api_key_env", *fields[after_key:]]

    def construct_change_message(
        self, request: HttpRequest, form: forms.Form, formsets: Iterable[BaseFormSet], add: bool = False
    ) -> list[dict[str, dict[str, list[str]]]]:
        """The history names the old and the new base URL, not only that it changed."""
        message = super().construct_change_message(request, form, formsets, add)
        if add or "base_url" not in form.changed_data:
            return message
        label = str(form.fields["base_url"].label)
        before = form.initial.get("base_url") or "the provider's default"
        after = form.cleaned_data["base_url"] or "the provider's default"
        for entry in message:
            changed = entry.get("changed")
            if changed is not None and "name" not in changed:  # the endpoint's own fields, not an inline's
                changed["fields"] = [
                    f"{label} (from {before} to {after})" if f == label else f for f in changed["fields"]
                ]
        return message


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
    actions = ["counters_recount"]
    readonly_fields = [
        "planned_count",
        "produced_count",
        "approved_count",
        "failed_count",
        "in_flight_count",
        "started_at",
        "finished_at",
        "created_by",
        # Changed through the batch page (batch_budget_set), which resumes a batch paused at its cap.
        "budget",
        "cost_estimate",
        "pause_reason",
    ]

    @admin.action(description="Recount the selected batches' counters from their cases")
    def counters_recount(self, request: HttpRequest, queryset: QuerySet[GenerationBatch]) -> None:
        healed = [batch.pk for batch in queryset if batch_counters_recount(batch_id=batch.pk)]
        self.message_user(
            request, f"Recounted {queryset.count()} batch(es); counters corrected in: {healed or 'none'}."
        )


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
    readonly_fields = ["status", "status_changed_at", "scenario_revisions", "survey_snapshot"]
    inlines = [PipelineStepInline]


@admin.register(PipelineStep)
class PipelineStepAdmin(ReadOnlyAdmin):
    # Who runs a step and until when its lease holds: what to look at when a step seems stuck.
    list_display = [
        "case",
        "agent",
        "attempt",
        "status",
        "lease_owner",
        "lease_expires_at",
        "claim_count",
        "started_at",
        "finished_at",
    ]
    list_filter = ["agent", "status"]
    list_select_related = ["case__code"]
    search_fields = ["case__id"]


@admin.register(ArtefactVersion)
class ArtefactVersionAdmin(ReadOnlyAdmin):
    list_display = ["case", "kind", "number", "source", "author", "created_at"]
    list_filter = ["kind", "source"]
    list_select_related = ["author", "case__code"]
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
    list_select_related = ["case__code"]
    search_fields = ["case__id", "provider_request_id", "error"]


@admin.register(ExampleRule)
class ExampleRuleAdmin(admin.ModelAdmin):
    """Pin a good approved case as an in-context example for a chapter, or exclude one
    (generation.examples says how the prompts use the rules)."""

    list_display = ["chapter", "kind", "case", "note", "created_by", "created_at"]
    list_filter = ["kind", "chapter"]
    list_select_related = ["case__code", "created_by"]
    search_fields = ["case__id", "case__code__code", "note"]
    raw_id_fields = ["case"]
    readonly_fields = ["created_by"]

    def save_model(self, request: HttpRequest, obj: ExampleRule, form: forms.ModelForm, change: bool) -> None:
        if not change and request.user.is_authenticated:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(InContextExample)
class InContextExampleAdmin(ReadOnlyAdmin):
    list_display = ["case", "example_case", "position", "call"]
    list_select_related = ["call"]
    search_fields = ["case__id", "example_case__id"]


class ProviderBatchLineInline(admin.TabularInline):
    model = ProviderBatchLine
    fields = readonly_fields = ("custom_id", "step", "status", "error")
    extra = 0
    can_delete = False


@admin.register(ProviderBatch)
class ProviderBatchAdmin(ReadOnlyAdmin):
    # What was sent to a provider's Batch API, under which ids, and how it ended.
    list_display = [
        "pk",
        "generation_batch",
        "agent",
        "status",
        "provider_status",
        "provider_batch_id",
        "line_count",
        "succeeded_count",
        "failed_count",
        "submitted_at",
        "completed_at",
    ]
    list_filter = ["status", "agent"]
    search_fields = ["provider_batch_id", "input_file_id", "submission_token"]
    inlines = [ProviderBatchLineInline]
