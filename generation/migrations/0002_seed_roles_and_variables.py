"""Seed the physician roles and the 13 scenario variables of the MedSynth method."""

from django.db import migrations

ROLES = [
    ("Family medicine physician", "Primary care for patients of every age; continuity of care."),
    ("General physician", "General practice; first contact for undifferentiated problems."),
    ("Internal medicine physician", "Adult medicine, often complex or multi-morbid patients."),
    ("Pediatrician", "Infants, children and adolescents."),
    ("Obstetrician-gynecologist", "Pregnancy, childbirth and the female reproductive system."),
    ("Emergency medicine physician", "Acute and urgent presentations in the emergency department."),
    ("Cardiologist", "Heart and blood vessels."),
    ("Endocrinologist", "Diabetes, thyroid and other hormonal disorders."),
    ("Pulmonologist", "Lungs and airways."),
    ("Gastroenterologist", "Digestive tract and liver."),
    ("Nephrologist", "Kidneys."),
    ("Neurologist", "Brain, spinal cord and nerves."),
    ("Psychiatrist", "Mental health and behavioural disorders."),
    ("Dermatologist", "Skin, hair and nails."),
    ("Orthopedic surgeon", "Bones, joints and musculoskeletal injuries."),
    ("Rheumatologist", "Joints and autoimmune disease."),
    ("Oncologist", "Cancer."),
    ("Infectious disease specialist", "Complex or unusual infections."),
    ("Urologist", "Urinary tract and male reproductive organs."),
    ("Ophthalmologist", "Eyes and vision."),
    ("Otolaryngologist", "Ear, nose and throat."),
    ("General surgeon", "Abdominal and general surgical conditions."),
]

VARIABLES = [
    (
        "medical_outcome",
        "Medical outcome",
        "What the encounter leads to: treatment, referrals and tests ordered.",
        [
            "Medications with dose, units, frequency, duration and route",
            "Referrals with their reason and the specialty referred to",
            "Specific laboratory tests and imaging ordered",
        ],
    ),
    ("medical_history", "Medical history", "Past illnesses, surgeries, chronic conditions, family history and current medications.", []),
    ("symptom_description", "Symptom description", "Onset, location, character, severity, timing and what makes the symptoms better or worse.", []),
    ("habits_lifestyle", "Self-reported habits and lifestyle", "Diet, exercise, sleep, tobacco, alcohol and other substance use as the patient reports them.", []),
    (
        "demographics",
        "Demographics",
        "Who the patient is.",
        ["Age", "Gender", "Ethnicity", "Socioeconomic status", "Education", "Health literacy", "Job"],
    ),
    ("patient_behaviour", "Patient behaviour", "How the patient acts in the visit: anxious, talkative, reticent, sceptical, adherent or not.", []),
    ("geographical_location", "Geographical location", "Where the patient lives, with what that implies for exposures and access to care.", []),
    ("clinical_setting", "Clinical setting", "Where the encounter happens: clinic, emergency department, hospital ward, telehealth.", []),
    ("encounter_type", "Type of encounter", "New problem, follow-up, annual check-up, medication review, urgent visit.", []),
    ("treatment_disparities", "Treatment disparities", "Barriers to care: cost, insurance, transport, language, discrimination.", []),
    ("english_proficiency", "Native vs non-native English speaker", "Whether the patient speaks English natively, and how that shows in the conversation.", []),
    ("physical_exam", "Physical exam findings", "Vital signs and examination findings the physician observes during the visit.", []),
    ("investigations", "Investigation and test results", "Results of tests already done: laboratory values, imaging, ECG and the like.", []),
]


def seed(apps, schema_editor):
    PhysicianRole = apps.get_model("generation", "PhysicianRole")
    QualityVariable = apps.get_model("generation", "QualityVariable")
    for name, description in ROLES:
        PhysicianRole.objects.get_or_create(name=name, defaults={"description": description})
    for position, (key, name, description, sub_items) in enumerate(VARIABLES, start=1):
        QualityVariable.objects.update_or_create(
            key=key,
            defaults={"name": name, "description": description, "sub_items": sub_items, "position": position},
        )


class Migration(migrations.Migration):
    dependencies = [("generation", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
