"""Time the automatic checks of 10,000 case versions, as the app runs them after a write.

    .venv/bin/python scripts/benchmark_case_checks.py [--versions 10000] [--processes 2]

Each version is a realistic synthetic case (scenario, SOAP note of ~1,500 characters, a
dialogue of 24 turns) with its own numbers, drugs and name, checked through
`generation.services.checks.checks_compute` for the note and for the dialogue: what a note
edit costs (coverage depends on both). Cases are unsaved model instances, so the figure is
the checks' CPU time, not the database's. --processes splits the versions over that many
worker processes (the machine's cores), as the Celery workers would."""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()

from generation import rendering  # noqa: E402
from generation.models import ArtefactKind, Case, GenerationBatch, IcdCode  # noqa: E402
from generation.services.checks import ArtefactText, checks_compute  # noqa: E402

NAMES = ["Maria Lopez", "John Carter", "Aisha Khan", "Peter Novak", "Grace Okafor", "Liam Walsh"]
DRUGS = [("metformin", 500, "twice daily"), ("lisinopril", 10, "once daily"), ("atorvastatin", 20, "at night")]


def synthetic_case(index: int) -> tuple[Case, dict[str, ArtefactText]]:
    name = NAMES[index % len(NAMES)]
    drug, dose, frequency = DRUGS[index % len(DRUGS)]
    age, systolic, diastolic, a1c = 40 + index % 40, 120 + index % 40, 70 + index % 20, 6.5 + (index % 30) / 10
    scenario = {"role": "Family medicine physician", "variables": {"demographics": f"{age}-year-old man"}}
    note = {
        "chief_complaint": "Increased thirst and tiredness.",
        "history_of_present_illness": f"Mr. {name.split()[1]} is a {age}-year-old man with three months of thirst, "
        "night-time urination and fatigue. He denies chest pain and shortness of breath.",
        "review_of_systems": "Negative for fever, weight loss and blurred vision.",
        "subjective": "He works as a bus driver, does not smoke and drinks alcohol on weekends.",
        "objective": f"BP {systolic}/{diastolic} mmHg, pulse 78, BMI 31. HbA1c {a1c:.1f}%. Feet: normal sensation.",
        "assessment": "Type 2 diabetes mellitus without complications. Essential hypertension.",
        "plan": f"Start {drug} {dose} mg by mouth {frequency}. Recheck HbA1c in 3 months. "
        "Refer to the diabetes educator. Follow up in 4 weeks.",
    }
    spoken = [
        ("doctor", f"Good morning, Mr. {name.split()[1]}. What brings you in today?"),
        ("patient", "I've been thirsty all the time for about three months, and I'm up at night to pee."),
        ("doctor", "Any chest pain or shortness of breath?"),
        ("patient", "No, none of that. Just tired, really tired."),
        ("doctor", "Any fever, weight loss or blurry vision?"),
        ("patient", "No, my weight has been the same."),
        ("doctor", "Do you smoke or drink?"),
        ("patient", "I don't smoke. A few beers at the weekend."),
        ("doctor", "What do you do for work?"),
        ("patient", "I drive a bus, so I sit most of the day."),
        ("doctor", f"Your blood pressure today is {systolic} over {diastolic}, and your pulse is 78."),
        ("patient", "Is that high?"),
        ("doctor", "A little. Your BMI is 31, and I checked your feet, the feeling is normal."),
        ("patient", "Okay, good."),
        ("doctor", f"Your HbA1c came back at {a1c:.1f} percent. That means type 2 diabetes."),
        ("patient", "I was afraid of that. My father had it."),
        ("doctor", f"We'll start {drug} {dose} milligrams by mouth {frequency}."),
        ("patient", "Any side effects I should know about?"),
        ("doctor", "Some people get an upset stomach at first; it usually settles."),
        ("patient", "All right."),
        ("doctor", "I'll refer you to the diabetes educator, and we'll recheck your HbA1c in 3 months."),
        ("patient", "And when do I see you again?"),
        ("doctor", "Let's follow up in 4 weeks to see how you're doing with the blood pressure."),
        ("patient", "Thank you, doctor."),
    ]
    dialogue = {"turns": [{"speaker": speaker, "text": text} for speaker, text in spoken]}
    code = IcdCode(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    case = Case(code=code, batch=GenerationBatch(config={}))
    texts = {
        ArtefactKind.SCENARIO: ArtefactText(rendering.render("scenario", scenario), scenario),
        ArtefactKind.NOTE: ArtefactText(rendering.render("note", note), note),
        ArtefactKind.DIALOGUE: ArtefactText(rendering.render("dialogue", dialogue), dialogue),
    }
    return case, texts


def check_versions(indexes: range) -> int:
    """Check each case as a note edit does: the note's checks and the dialogue's (coverage)."""
    for index in indexes:
        case, texts = synthetic_case(index)
        for kind in (ArtefactKind.NOTE, ArtefactKind.DIALOGUE):
            checks_compute(case=case, kind=kind, texts=texts)
    return len(indexes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    shares = [range(start, args.versions, args.processes) for start in range(args.processes)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        checked = sum(pool.map(check_versions, shares))
    seconds = time.perf_counter() - started
    print(f"checked {checked:,} case versions (note + dialogue) in {seconds:.1f} s on {args.processes} processes")
    print(f"{seconds / checked * 1000:.2f} ms per case version")


if __name__ == "__main__":
    main()
