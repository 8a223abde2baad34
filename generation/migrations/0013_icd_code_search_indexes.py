"""Indexes for the code autocomplete's description search, one set per database.

The search keeps the codes whose description holds every typed word
(`description__icontains`) and returns the 20 most frequent. Two cases make it slow
without an index: a rare word (every description must be read) and a common one ("other",
"encounter": tens of thousands of matches to sort). Walking an index already in
frequency order answers a common word after a few rows; the rare word still reads every
description, from the narrowest place the database has.

- PostgreSQL: a btree in the search's order (frequency DESC NULLS LAST, code) and a GIN
  trigram index on UPPER(description::text), the expression icontains runs as; the planner
  takes the one that fits the word. pg_trgm ships with PostgreSQL and is a trusted
  extension (13+), so the database owner may create it.
- SQLite: one index in the search's order that also holds the description (DESC puts
  NULLs last there), so the scan stops early and never reads the wide rows.

`make benchmark-code-search` prints the figures. Schema-only; the model does not declare
these indexes because they differ per database.
"""

from django.db import migrations

INDEXES = {
    "postgresql": {
        "icd_search_frequency_order": "ON generation_icdcode (frequency DESC NULLS LAST, code)",
        "icd_search_description_trgm": "ON generation_icdcode USING gin ((UPPER(description::text)) gin_trgm_ops)",
    },
    "sqlite": {
        "icd_search_frequency_order": "ON generation_icdcode (frequency DESC, code, description)",
    },
}


def create_indexes(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES.get(vendor, {}).items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")


def drop_indexes(apps, schema_editor):
    for name in INDEXES.get(schema_editor.connection.vendor, {}):
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0012_batch_budget_and_cost_estimate"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
