"""Every automatic check's findings on real pairs, as JSON: run it on two commits and compare the
files to show that a change made for speed finds the same things (`cmp before.json after.json`).

    .venv/bin/python scripts/checks_snapshot.py after.json [--file ../shared/data/aci-bench/train.csv]

The pairs are ACI-Bench's (read at run time, never copied), also with each note beside another
encounter's dialogue (so coverage has misses to find), upper- and lower-cased, cut short, and with
a preamble full of PHI-like strings, placeholders and ICD codes; each is checked as the import
checks it (the dialogue beside its note as parsed) and as a full case (scenario, ICD code,
language and dialogue limits varied), both kinds. Reads files only; writes only its output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()  # the checks read the note's fields from generation.models

from generation.checks import (  # noqa: E402
    CheckSubject,
    CodeFacts,
    DialogueLimits,
    coverage_misses,
    dialogue_turn_pairs,
    run_checks,
    version_check_flags,
)
from review.datasets.imports.parsing import dialogue_parse, note_parse  # noqa: E402

ACI_BENCH = ROOT.parent / "shared" / "data" / "aci-bench" / "train.csv"
PREAMBLE = (
    "Sure! Here is the dialogue:\n```\n## Dialogue\n[doctor] your code is E11.9 and I10, icd-10 billing code. Call "
    "555-123-4567 or (555) 222-3333, mail a.b@example.com, SSN 123-45-6789, MRN: 1234567, 12 Main Street, "
    "DOB: 01/02/1980. [Name] <patient name> {{x}} XX-XXX ___\nAssessment:\n---\nI hope this helps!\n"
)
CODES = [
    None,
    CodeFacts("O80", "Encounter for full-term uncomplicated delivery", "15"),
    CodeFacts("N40.0", "Benign prostatic hyperplasia", "14", "N40-N53"),
    CodeFacts("P07.3", "Preterm newborn", "16"),
    CodeFacts("Z00.129", "Encounter for routine child health examination"),
]
SCENARIOS = [
    {},
    {"variables": {"demographics": "Martha Collins is a 50-year-old woman"}},
    {"variables": {"patient": "Mr. John Smith, 72 yo male"}},
]


def pairs_of(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as source:
        pairs = [(row["note"], row["dialogue"]) for row in csv.DictReader(source)]
    count = len(pairs)
    pairs += [(pairs[i][0], pairs[(i + 1) % count][1]) for i in range(count)]
    pairs += [(note.upper(), dialogue.upper()) for note, dialogue in pairs[:20]]
    pairs += [(note.lower(), dialogue.replace("\n", " ")) for note, dialogue in pairs[:20]]
    pairs += [(note[: len(note) // 3], dialogue[: len(dialogue) // 2]) for note, dialogue in pairs[:30]]
    return pairs + [(PREAMBLE + note, PREAMBLE + dialogue) for note, dialogue in pairs[:12]]


def findings(index: int, note: str, dialogue: str) -> dict[str, Any]:
    parsed_note, parsed_dialogue = note_parse(note), dialogue_parse(dialogue)
    found: dict[str, Any] = {
        "imported note": version_check_flags(kind="note", content=parsed_note.content, text=note),
        "imported dialogue": version_check_flags(
            kind="dialogue", content=parsed_dialogue.content, text=dialogue, note_content=parsed_note.content
        ),
        "coverage misses": coverage_misses(note_text=note, dialogue_text=dialogue),
    }
    for kind in ("note", "dialogue"):
        subject = CheckSubject(
            kind=kind,
            note_text=note,
            dialogue_text=dialogue,
            dialogue_turns=dialogue_turn_pairs(parsed_dialogue.content),
            scenario=SCENARIOS[index % len(SCENARIOS)],
            code=CODES[index % len(CODES)],
            language=("en", "fr", "es")[index % 3],
            limits=DialogueLimits(max_run=2, min_mean_turn_words=8, max_turn_words=60)
            if index % 3 == 0
            else DialogueLimits(),
        )
        found[f"case {kind}"] = [
            [
                r.code,
                r.version,
                str(r.severity),
                r.score,
                [[f.message, f.spans, f.detail, f.span_kind] for f in r.findings],
            ]
            for r in run_checks(subject)
        ]
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--file", type=Path, default=ACI_BENCH, help="ACI-Bench's CSV (dialogue and note columns)")
    args = parser.parse_args(argv)
    pairs = pairs_of(args.file)
    snapshot = [findings(index, note, dialogue) for index, (note, dialogue) in enumerate(pairs)]
    args.out.write_text(json.dumps(snapshot, indent=0, sort_keys=True, default=repr))
    print(f"{len(pairs)} pairs, {sum(len(str(item)) for item in snapshot):,} characters of findings -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
