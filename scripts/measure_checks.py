"""Measure the automatic checks on real pairs, then on the same pairs with known defects injected.

    .venv/bin/python scripts/measure_checks.py FILE --format aci|medsynth|jsonl [--limit N]

Part 1 prints, per check, how many pairs it flags (any finding) and with what severity: on
clinician-written text (ACI-Bench) a check that fires often is crying wolf. Part 2 injects one
known defect at a time into each pair (drop a medication from the dialogue, change a dose, add
a preamble, a header or a placeholder, give a sex-inconsistent code, rename the patient in the
dialogue, turn the dialogue into another language) and prints how many the expected check
finds. Pairs a defect cannot apply to (no medication spoken, no name said) are left out of its
count. Reads files only; writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()  # the checks read the note's fields from generation.models

from generation.checks import CHECKS, CheckResultData, CheckSubject, CodeFacts, run_checks  # noqa: E402
from generation.checks.consistency import FEMALE, demographics  # noqa: E402
from generation.checks.coverage import Speech, dialogue_turns  # noqa: E402
from generation.checks.facts import DOSE, FORMS, MEDICATION, note_facts  # noqa: E402

csv.field_size_limit(10_000_000)


@dataclass(frozen=True)
class Pair:
    key: str
    note: str
    dialogue: str
    code: CodeFacts | None = None


def read_pairs(path: Path, fmt: str) -> list[Pair]:
    if fmt == "jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [Pair(str(row.get("id", i)), row["note"], row["dialogue"]) for i, row in enumerate(rows)]
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if fmt == "aci":
        return [Pair(row["encounter_id"], row["note"], row["dialogue"]) for row in rows]
    note_column = " Note" if rows and " Note" in rows[0] else "Note"
    return [Pair(str(i), row[note_column], row["Dialogue"]) for i, row in enumerate(rows)]


def check_pair(pair: Pair) -> dict[str, CheckResultData]:
    results: dict[str, CheckResultData] = {}
    for kind in ("note", "dialogue"):
        subject = CheckSubject(kind=kind, note_text=pair.note, dialogue_text=pair.dialogue, code=pair.code)
        for result in run_checks(subject):
            if result.findings or result.code not in results:
                results[result.code] = result
    return results


# --- defects ------------------------------------------------------------------------------
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _words(number: int) -> list[str]:
    """The ways a dose is said: "40", "forty"; "2.5" has no word form here."""
    if number < 20:
        return [_ONES[number]]
    if number < 100:
        tens, ones = divmod(number, 10)
        return [_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""), _TENS[tens] + (f" {_ONES[ones]}" if ones else "")]
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        tails = _words(rest) if rest else [""]
        return [f"{_ONES[hundreds]} hundred" + (f" {tail}" if tail else "") for tail in tails] + [
            f"{_ONES[hundreds]} hundred and {tail}" for tail in tails if tail
        ]
    return []


def drop_medication(pair: Pair) -> tuple[Pair, str] | None:
    speech = Speech(dialogue_turns(pair.dialogue))
    for fact in note_facts(pair.note):
        if fact.category == MEDICATION and speech.says_term(MEDICATION, fact.name):
            forms = sorted(FORMS.get((MEDICATION, fact.name), (fact.name,)), key=len, reverse=True)
            pattern = re.compile(r"\b(?:" + "|".join(re.escape(form) for form in forms) + r")\b", re.IGNORECASE)
            return replace(pair, dialogue=pattern.sub("the medicine", pair.dialogue)), fact.name
    return None


def change_dose(pair: Pair) -> tuple[Pair, str] | None:
    speech = Speech(dialogue_turns(pair.dialogue))
    for fact in note_facts(pair.note):
        if fact.category != DOSE or not speech.says_numbers(fact.numbers, dose=True):
            continue
        number = fact.numbers[0]
        if not number.isdigit() or int(number) < 2:
            continue
        forms = [number, *_words(int(number))]
        pattern = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(form) for form in forms) + r")(?![\w.])", re.I)
        changed = pattern.sub(str(int(number) * 3), pair.dialogue)
        if changed != pair.dialogue:
            return replace(pair, dialogue=changed), number
    return None


def add_preamble(pair: Pair) -> tuple[Pair, str]:
    return replace(pair, dialogue="Sure! Here is the conversation between the doctor and the patient:\n\n"
                   + pair.dialogue), "Sure!"  # fmt: skip


def add_header(pair: Pair) -> tuple[Pair, str]:
    lines = pair.dialogue.splitlines()
    middle = len(lines) // 2
    return replace(pair, dialogue="\n".join([*lines[:middle], "**Assessment and Plan:**", *lines[middle:]])), "header"


def add_placeholder(pair: Pair) -> tuple[Pair, str]:
    lines = pair.dialogue.splitlines()
    first = next((i for i, line in enumerate(lines) if line.lower().startswith("[doctor]")), 0)
    lines[first] = "[doctor] hello [Patient Name], i am dr. [Your Name]. " + lines[first].split("]", 1)[-1]
    return replace(pair, dialogue="\n".join(lines)), "[Patient Name]"


def sex_inconsistent_code(pair: Pair) -> tuple[Pair, str] | None:
    patient = demographics(pair.note)
    if patient.sex is None:
        return None
    if patient.sex.value == FEMALE:
        code = CodeFacts("N40.0", "Benign prostatic hyperplasia without lower urinary tract symptoms", "14", "N40-N53")
    else:
        code = CodeFacts("N80.0", "Endometriosis of uterus", "14", "N80-N98")
    return replace(pair, code=code), code.code


def rename_patient(pair: Pair) -> tuple[Pair, str] | None:
    names = {part for mention in demographics(pair.note).names for part in mention.value.split()}
    said = [name for name in names if re.search(rf"\b{re.escape(name)}\b", pair.dialogue, re.IGNORECASE)]
    if not said:
        return None
    dialogue = pair.dialogue
    for name in said:
        dialogue = re.sub(rf"\b{re.escape(name)}\b", "bartholomew", dialogue, flags=re.IGNORECASE)
    return replace(pair, dialogue=dialogue), "name"


_SPANISH = [
    "buenos días, ¿cómo se siente hoy?",
    "pues no muy bien, doctor, me duele la espalda desde hace una semana.",
    "¿y el dolor es constante o va y viene?",
    "va y viene, pero por la noche es peor y no puedo dormir.",
    "vamos a hacer unos análisis de sangre y le voy a recetar un medicamento para el dolor.",
    "muchas gracias, doctor. ¿tengo que volver la próxima semana?",
]


def spanish_dialogue(pair: Pair) -> tuple[Pair, str]:
    lines = []
    for index, turn in enumerate(dialogue_turns(pair.dialogue)):
        lines.append(f"[{turn.speaker or 'doctor'}] {_SPANISH[index % len(_SPANISH)]}")
    return replace(pair, dialogue="\n".join(lines)), "es"


Defect = Callable[[Pair], "tuple[Pair, str] | None"]
# defect name -> (injector, the check expected to find it, does a result name it)
DEFECTS: dict[str, tuple[Defect, tuple[str, ...]]] = {
    "drop a medication": (drop_medication, ("coverage_prescription_unspoken", "coverage_unspoken")),
    "change a dose": (change_dose, ("coverage_prescription_unspoken", "coverage_unspoken")),
    "add a preamble": (add_preamble, ("dialogue_meta_text",)),
    "add a header": (add_header, ("dialogue_meta_text",)),
    "add a placeholder": (add_placeholder, ("placeholder",)),
    "sex-inconsistent code": (sex_inconsistent_code, ("code_demographics",)),
    "name mismatch": (rename_patient, ("demographics_mismatch",)),
    "dialogue in another language": (spanish_dialogue, ("dialogue_language",)),
}


def _found(results: dict[str, CheckResultData], codes: tuple[str, ...], marker: str, coverage: bool) -> bool:
    for code in codes:
        findings = results[code].findings if code in results else []
        if coverage:
            if any(str(finding.detail).lower().startswith(marker.lower()) for finding in findings):
                return True
        elif findings:
            return True
    return False


def measure_clean(pairs: list[Pair]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {check.code: Counter() for check in CHECKS}
    for pair in pairs:
        for code, result in check_pair(pair).items():
            if result.findings:
                counts[code][str(result.severity)] += 1
    return counts


def measure_defects(pairs: list[Pair]) -> Iterator[tuple[str, str, int, int]]:
    for name, (inject, codes) in DEFECTS.items():
        injected = found = 0
        for pair in pairs:
            made = inject(pair)
            if made is None:
                continue
            broken, marker = made
            injected += 1
            coverage = codes[0].startswith("coverage")
            found += _found(check_pair(broken), codes, marker, coverage)
        yield name, codes[0], injected, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", choices=["aci", "medsynth", "jsonl"], required=True)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    pairs = read_pairs(args.file, args.format)
    if args.limit:
        pairs = pairs[: args.limit]
    total = len(pairs)
    print(f"## Real pairs ({total}): pairs flagged per check\n")
    print("| check | severity | pairs flagged | share |")
    print("| --- | --- | ---: | ---: |")
    for check in CHECKS:
        flagged = sum(measure_clean_cache(pairs)[check.code].values())
        print(f"| {check.code} | {check.severity} | {flagged} | {flagged / max(total, 1):.0%} |")
    print("\n## Injected defects: found by the expected check\n")
    print("| defect | expected check | injected | found | share |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, code, injected, found in measure_defects(pairs):
        print(f"| {name} | {code} | {injected} | {found} | {found / max(injected, 1):.0%} |")


_CLEAN: dict[int, dict[str, Counter[str]]] = {}


def measure_clean_cache(pairs: list[Pair]) -> dict[str, Counter[str]]:
    if id(pairs) not in _CLEAN:
        _CLEAN[id(pairs)] = measure_clean(pairs)
    return _CLEAN[id(pairs)]


if __name__ == "__main__":
    main()
