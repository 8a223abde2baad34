"""The automatic checks find the same things after a change made for speed.

Made-up texts that mix what the checks read (vocabulary terms and their lay forms, negations
and their terminators, spelled-out numbers, doses, headings, speaker tags, names, ages, PHI-like
strings, placeholders) with what their shortcuts must survive (mixed case, hyphens and
apostrophes, and the characters that case-insensitive matching folds into ASCII letters) are
checked as notes and as dialogues, and every finding is compared with the findings the checks
gave before their speed-up (tests/fixtures/check_findings.json).

A change that is meant to change findings records them again, and says so in its commit:

    UPDATE_CHECK_FINDINGS=1 .venv/bin/python -m pytest tests/generation/test_checks_equivalence.py
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from text_to_num import alpha2digit

from generation import rendering
from generation.checks import CheckSubject, CodeFacts, DialogueLimits, dialogue_turn_pairs, run_checks
from generation.checks.caseless import FOLD_TO_ASCII, CaselessPattern, may_contain
from generation.checks.coverage import _may_name_a_number
from generation.checks.facts import QUANTITY, quantity_matches, token_words
from generation.checks.lexicon import DRUGS, TERMS, UNITS
from review.datasets.imports.parsing import dialogue_parse, note_parse

FINDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "check_findings.json"
PAIRS = 24

_PHRASES = [
    *(form for entries in TERMS.values() for canonical, forms in entries.items() for form in (canonical, *forms)),
    *(form for canonical, forms in DRUGS.items() for form in (canonical, *forms)),
    *("2 " + unit for unit in UNITS),
    "denies", "no", "not", "without", "never", "but", "however", "which", "don't", "free of", "ruled out",
    "one hundred forty-eight over ninety", "two", "twelve", "a half", "3 and a half", "1 48", "twice", "a couple",
    "40 mg", "148/90", "98.6 degrees", "follow up in 2 weeks", "BP 130/80", "heart rate 88", "a1c level 7.2",
    "Mr. Smith", "Mrs Collins", "she", "he", "his", "her", "woman", "gentleman", "50-year-old", "I'm 45",
    "Martha Collins is a 50-year-old", "hi, martha", "patient is donald duck,", "age: 72", "3 yo",
    "DOB: 01/02/1980", "born March 3, 1950", "MRN 1234567", "555-123-4567", "(555) 222-3333", "a.b@example.com",
    "123-45-6789", "12 Main Street", "[Name]", "<patient name>", "{{clinic}}", "XX-XXX", "____", "E11.9", "I10",
    "vitamin B12", "ICD-10 code", "x-ray", "a-fib", "patient's", "COVID-19", "Lisinoprill", "Metformin",
    "KIDNEY STONE", "Chest Pain", "denies chest pain", "no fever", "has a fever", "reports nausea", "not dizzy",
    "any headache?\n[patient] no", "any cough?\n[patient] yes", "without vomiting",
    "\u0130", "\u0131", "\u017f", "\u212a", "\u03a3", "caf\u00e9", "\u2013",
]  # fmt: skip
_MARKS = [" ", " ", " ", " ", ", ", ". ", "? ", "! ", "; ", "\n"]
_HEADINGS = ["SUBJECTIVE:", "OBJECTIVE:", "ASSESSMENT:", "PLAN:", "Assessment and Plan:", "HPI:", "Vitals:", "S:"]
_SPEAKERS = ["[doctor]", "[patient]", "[doctor]:", "Patient:", "[nurse]", "[unknown]", "Dr:"]
_CODES = [
    None,
    CodeFacts("O80", "Encounter for full-term uncomplicated delivery", "15"),
    CodeFacts("N40.0", "Benign prostatic hyperplasia", "14", "N40-N53"),
    CodeFacts("P07.3", "Preterm newborn", "16"),
    CodeFacts("Z00.129", "Encounter for routine child health examination"),
    CodeFacts("N95.1", "Menopausal and female climacteric states", "14", "N80-N98"),
]
_SCENARIOS = [
    {},
    {"variables": {"demographics": "Martha Collins is a 50-year-old woman"}},
    {"variables": {"p": "Mr. Lee"}},
]


def _words(rng: random.Random, count: int) -> str:
    parts = []
    for _ in range(count):
        phrase = rng.choice(_PHRASES)
        parts.append(phrase.upper() if rng.random() < 0.05 else phrase.capitalize() if rng.random() < 0.1 else phrase)
        parts.append(rng.choice(_MARKS))
    return "".join(parts)


def crafted_pair(seed: int) -> tuple[str, str]:
    rng = random.Random(seed)
    sections = [f"{rng.choice(_HEADINGS)}\n{_words(rng, rng.randint(0, 20))}" for _ in range(rng.randint(1, 6))]
    note = "\n".join(sections + (["PLAN:\nStable."] if seed % 4 == 0 else []))
    turns = [f"{rng.choice(_SPEAKERS)} {_words(rng, rng.randint(1, 10))}" for _ in range(rng.randint(0, 16))]
    preamble = "Sure! Here is the dialogue:\n```\n" if rng.random() < 0.2 else ""
    return note, preamble + "\n".join(turns)


def _result_json(results: list[Any]) -> list[Any]:
    return [
        [r.code, r.version, str(r.severity), r.score,
         [[f.message, [list(span) for span in f.spans], f.detail, f.span_kind] for f in r.findings]]
        for r in results
    ]  # fmt: skip


def findings(seed: int) -> dict[str, Any]:
    """Every check's findings on the pair, as a note and as a dialogue, beside its parsed note."""
    note, dialogue = crafted_pair(seed)
    rendered = rendering.note_text(note_parse(note).content)
    # The import checks a dialogue beside its note as parsed and rendered again.
    subjects = (("original", note, "note"), ("original", note, "dialogue"), ("rendered", rendered, "dialogue"))
    found = {}
    for label, note_text, kind in subjects:
        subject = CheckSubject(
            kind=kind,
            note_text=note_text,
            dialogue_text=dialogue,
            dialogue_turns=dialogue_turn_pairs(dialogue_parse(dialogue).content),
            scenario=_SCENARIOS[seed % len(_SCENARIOS)],
            code=_CODES[seed % len(_CODES)],
            language=("en", "fr")[seed % 2],
            limits=DialogueLimits(max_run=2, max_turn_words=40) if seed % 3 == 0 else DialogueLimits(),
        )
        found[f"{label} {kind}"] = _result_json(run_checks(subject))
    return found


def _recorded() -> list[dict[str, Any]]:
    if os.environ.get("UPDATE_CHECK_FINDINGS"):
        recorded = [findings(seed) for seed in range(PAIRS)]
        FINDINGS.write_text(json.dumps(recorded, separators=(",", ":"), default=repr) + "\n")
    return json.loads(FINDINGS.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def recorded() -> list[dict[str, Any]]:
    return _recorded()


def test_the_texts_reach_every_kind_of_finding(recorded: list[dict[str, Any]]) -> None:
    """A comparison on texts that no check flags would prove nothing."""
    codes = {result[0] for pair in recorded for results in pair.values() for result in results if result[4]}
    assert codes >= {
        "placeholder", "phi_like", "missing_section", "soap_thin_section", "soap_misplaced",
        "coverage_prescription_unspoken", "coverage_unspoken", "coverage_polarity", "coverage_note_omits",
        "dialogue_speakers", "dialogue_turns", "dialogue_meta_text", "dialogue_icd_code", "dialogue_language",
        "demographics_mismatch", "code_demographics",
    }  # fmt: skip


@pytest.mark.parametrize("seed", range(PAIRS))
def test_the_checks_find_what_they_found_before(seed: int, recorded: list[dict[str, Any]]) -> None:
    assert json.loads(json.dumps(findings(seed), default=repr)) == recorded[seed]


def test_only_four_characters_fold_into_ascii_letters() -> None:
    """The premise of caseless.py, over every code point: no other character matches an ASCII
    letter case-insensitively, lower-cases to one, or lower-cases to another kind of character."""
    letter = re.compile("[a-z]", re.IGNORECASE)
    word, space, digit = re.compile(r"\w"), re.compile(r"\s"), re.compile(r"\d")
    folding = set()
    for code_point in range(0x80, sys.maxunicode + 1):
        char = chr(code_point)
        lowered = char.lower()
        if letter.fullmatch(char) or any(c.isascii() and c.isalnum() for c in lowered):
            folding.add(char)
        if len(lowered) == 1:
            assert all(bool(p.match(char)) == bool(p.match(lowered)) for p in (word, space, digit)), char
        assert lowered.lower() == lowered
    assert folding == set(FOLD_TO_ASCII)


@pytest.mark.parametrize(
    "text",
    [
        "Mr. SMITH and HER wife",
        "MIss Kelly, M\u0130SS",
        "hi \u212aate, she is",
        "\u03a3\u03a3 his \u017fhe",
        "plain he",
    ],
)
def test_a_caseless_pattern_matches_where_ignorecase_matches(text: str) -> None:
    source = r"\b(he|she|her|his|miss|mr|kate)\b"
    anycase = [match.span() for match in re.finditer(source, text, re.IGNORECASE)]
    assert [match.span() for match in CaselessPattern(source).finditer(text)] == anycase
    assert (CaselessPattern(source).search(text) is None) == (not anycase)
    assert may_contain(text, "he", "mr", "miss", "kate") or not anycase


def test_quantities_are_found_where_a_scan_of_every_position_finds_them() -> None:
    pieces = ["1", "48", "148", "1,000", "2.5", "\u0661\u0662", "\u00b2", " ", "/", " over ", ".", ",", "-", "a", "mg"]
    pieces += [" mg", " weeks", "%", "x", "\n", "a1c "]
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        assert [m.span() for m in quantity_matches(text)] == [m.span() for m in QUANTITY.finditer(text)], text


def test_a_text_passed_over_as_naming_no_number_is_one_text2num_leaves_as_it_is() -> None:
    number_words = "zero o nought one first second third fourth twelfth twenty forty fifty sixteeth hundred million"
    pieces = [*number_words.split(), "ones", "seconds", "thirds", "oneth", "fifths", "and", "point", "a", "pain", "mg"]
    pieces += ["bone", "often", "tender", "someone", "2", "x", "-", "'", "_", "s", " ", " ", ". ", "\u0301", "\u00e9"]
    rng = random.Random(7)
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        if not _may_name_a_number(token_words(text)):
            assert alpha2digit(text, "en") == text, text
