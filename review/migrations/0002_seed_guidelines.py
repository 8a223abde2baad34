from django.db import migrations

GUIDELINES = [
    (
        "How to review",
        """Read the scenario, then the note, then the dialogue.

- **Approve** when the item is medically correct, plausible and matches the ICD-10 code.
- **Edit** small problems yourself: a wrong dose, a finding in the wrong SOAP section, a stilted turn.
- **Reject** with a reason and a comment when the item cannot be fixed by a small edit.
- **Regenerate** with a comment that tells the agent what to change.

Every fact in the note must be spoken in the dialogue, and the dialogue must add no clinical fact the note lacks.
Completed tests belong in *Objective*; ordered tests, prescriptions and referrals belong in *Plan*.""",
    ),
]


def seed(apps, schema_editor):
    Guideline = apps.get_model("review", "Guideline")
    for position, (title, body) in enumerate(GUIDELINES):
        Guideline.objects.get_or_create(title=title, defaults={"body_markdown": body, "position": position})


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
