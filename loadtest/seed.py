"""Prepare a fresh database for the load test, through the app's own commands and services:

    python loadtest/seed.py --clinicians 50 --cases-per-clinician 40

migrate, collectstatic and the ICD-10-CM catalogue (as `make run` does), one admin and N
clinicians (`user_create`, with the password in $LOADTEST_PASSWORD), a MedSynth-style CSV of
look-alike pairs imported with `import_dataset` (so every case waits for the final pair
review), and `reviewers_assign`: each case goes to one clinician, and every tenth also to the
next clinician, so two reviewers sometimes race for the same case as they do in real use.

The database is the one the environment names (DATABASE_URL, or SQLite in MEDSYNTH_DATA_DIR).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from generation.models import Case, GenerationBatch, ReviewStage  # noqa: E402
from loadtest.shared import ADMIN_USERNAME, PASSWORD_ENV, reviewer_username  # noqa: E402
from medsynth_site.roles import ADMIN, CLINICIAN, user_create  # noqa: E402
from review.services import reviewers_assign  # noqa: E402

# Billable codes of the catalogue, common in primary care.
CODES = (
    ("J02.9", "sore throat", "pharyngitis"),
    ("I10", "high blood pressure readings", "essential hypertension"),
    ("E11.9", "raised blood sugar", "type 2 diabetes mellitus"),
    ("J20.9", "productive cough", "acute bronchitis"),
    ("N39.0", "burning on urination", "urinary tract infection"),
    ("K21.9", "heartburn after meals", "gastro-oesophageal reflux"),
    ("R51.9", "headaches", "tension-type headache"),
    ("J45.909", "wheezing at night", "asthma"),
    ("M54.50", "low back pain", "mechanical low back pain"),
    ("E78.5", "a high cholesterol result", "hyperlipidaemia"),
    ("F41.1", "constant worrying", "generalised anxiety"),
    ("H66.90", "ear pain", "otitis media"),
)
# One clinician in SHARE_EVERY also gets the case of the next clinician.
SHARE_EVERY = 10


def _note(index: int) -> str:
    code, complaint, diagnosis = CODES[index % len(CODES)]
    days, nights, weeks = 2 + index % 12, 1 + index % 4, 1 + index % 6
    history = "Symptoms are worse in the evening and partly relieved by rest. " * (2 + index % 3)
    examination = "Alert and oriented; no acute distress. Heart sounds normal; chest clear. " * 2
    return (
        f"SUBJECTIVE:\nPatient presents with {complaint} for {days} days. {history}"
        f"No fever reported. Sleep is disturbed on {nights} nights a week.\n\n"
        f"OBJECTIVE:\nBP {112 + index % 38}/{68 + index % 20}, pulse {62 + index % 30}, "
        f"temperature 36.{index % 9} C. {examination}\n\n"
        f"ASSESSMENT:\nPresentation consistent with {diagnosis} ({code}). "
        "No red flags on history or examination.\n\n"
        f"PLAN:\nDiscussed the diagnosis and self-care. Follow up in {weeks} weeks, "
        "sooner if symptoms worsen. Written advice given."
    )


def _dialogue(index: int) -> str:
    _code, complaint, diagnosis = CODES[index % len(CODES)]
    days = 2 + index % 12
    turns = [
        "[doctor]: Good morning, what brings you in today?",
        f"[patient]: I have had {complaint} for about {days} days now.",
        "[doctor]: Is it worse at any particular time of day?",
        "[patient]: Mostly in the evening. Resting helps a bit.",
        "[doctor]: Any fever, chills or weight loss?",
        "[patient]: No, nothing like that.",
        "[doctor]: How many nights a week is your sleep disturbed?",
        f"[patient]: About {1 + index % 4}, I would say.",
        "[doctor]: Let me examine you and check your blood pressure.",
        f"[doctor]: Your blood pressure is {112 + index % 38} over {68 + index % 20}.",
        "[patient]: Is that something to worry about?",
        f"[doctor]: Overall this looks like {diagnosis}. There are no warning signs today.",
        "[patient]: What should I do in the meantime?",
        f"[doctor]: Rest, follow the written advice, and come back in {1 + index % 6} weeks.",
        "[patient]: Thank you, doctor.",
    ]
    return "\n".join(turns)


def pairs_csv_write(*, path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Note", "Dialogue", "ICD10", "ICD10_desc"])
        for index in range(count):
            writer.writerow([_note(index), _dialogue(index), CODES[index % len(CODES)][0], ""])


def accounts_create(*, clinicians: int, password: str) -> tuple[User, list[User]]:
    admin, _password = user_create(username=ADMIN_USERNAME, role=ADMIN, password=password)
    reviewers = [
        user_create(username=reviewer_username(index), role=CLINICIAN, password=password)[0]
        for index in range(clinicians)
    ]
    return admin, reviewers


def cases_assign(*, batch: GenerationBatch, reviewers: list[User], admin: User) -> int:
    """Case k goes to reviewer k mod N, and each SHARE_EVERY-th case to the next reviewer too."""
    shared = 0
    with transaction.atomic():
        for index, case in enumerate(Case.objects.filter(batch=batch).order_by("id")):
            assigned = [reviewers[index % len(reviewers)]]
            if index % SHARE_EVERY == 0 and len(reviewers) > 1:
                assigned.append(reviewers[(index + 1) % len(reviewers)])
                shared += 1
            reviewers_assign(case=case, stage=ReviewStage.PAIR, reviewers=assigned, assigned_by=admin)
    return shared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clinicians", type=int, required=True)
    parser.add_argument("--cases-per-clinician", type=int, default=40)
    args = parser.parse_args()
    password = os.environ[PASSWORD_ENV]
    started = time.perf_counter()
    # Static files need no database: collected meanwhile, on the other core.
    static = subprocess.Popen([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], cwd=ROOT)
    call_command("migrate", "--noinput", verbosity=0)
    call_command("load_icd10", "--if-empty")
    admin, reviewers = accounts_create(clinicians=args.clinicians, password=password)
    pairs = Path(settings.DATA_DIR) / "loadtest-pairs.csv"
    pairs_csv_write(path=pairs, count=args.clinicians * args.cases_per_clinician)
    call_command("import_dataset", str(pairs), "--format", "medsynth")
    batch = GenerationBatch.objects.latest("created_at")
    shared = cases_assign(batch=batch, reviewers=reviewers, admin=admin)
    if static.wait() != 0:
        return 1
    print(
        f"Seeded {args.clinicians} clinicians and {batch.cases.count()} cases waiting for the pair review "
        f"({shared} shared by two reviewers) in {time.perf_counter() - started:.0f} s.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
