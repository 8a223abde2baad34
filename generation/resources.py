"""django-import-export resources for generation's reference data in the admin: the
ICD-10 catalogue, the site's code frequencies and physician roles.

Code frequencies are exported here but imported through
`generation.services.catalogue.code_frequencies_import` (the admin's "Import code
frequencies" page and `manage.py import_code_frequencies`), so both ways in follow
one set of rules; the export writes the file that import reads."""

from __future__ import annotations

from typing import Any

from import_export import fields, resources, widgets

from generation.models import IcdCode, PhysicianRole


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
    """Export only: code,count rows for the codes that have a frequency, the file that
    the frequency import reads back."""

    count = fields.Field(attribute="frequency", column_name="count", readonly=True)

    class Meta:
        model = IcdCode
        name = "Code frequencies (code, count)"
        fields = ("code", "count")
        export_order = fields

    def filter_export(self, queryset: Any, **kwargs: Any) -> Any:
        return queryset.filter(frequency__isnull=False)

    def import_data(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("Code frequencies are imported with code_frequencies_import, not with this resource.")


class PhysicianRoleResource(resources.ModelResource):
    class Meta:
        model = PhysicianRole
        name = "Physician roles"
        import_id_fields = ("name",)
        fields = ("name", "description", "is_active")
        export_order = fields
        skip_unchanged = True
        # A row over a field's limit is reported with the field's message, not as a database error.
        clean_model_instances = True
