"""Automatic checks on an artefact version: cheap, deterministic heuristics that put a
badge in front of the reviewer and travel with the `full` export. They flag, never block:
a clinician decides.

Each flag is {"code": "missing_section" | "unspoken_fact" | "placeholder" | "phi_like",
"message": str, "detail": ...}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from generation.rendering import SOAP_SECTIONS, SUBJECTIVE_PARTS

MISSING_SECTION = "missing_section"
UNSPOKEN_FACT = "unspoken_fact"
PLACEHOLDER = "placeholder"
PHI_LIKE = "phi_like"

# --- placeholders --------------------------------------------------------------------
_PLACEHOLDER_WORDS = r"name|date|age|address|phone|number|clinic|hospital|location|city|dob|mrn|doctor|patient"
_PLACEHOLDER_PATTERNS = (
    re.compile(rf"\[[^\]\n]{{0,30}}\b(?:{_PLACEHOLDER_WORDS})\b[^\]\n]{{0,30}}\]", re.IGNORECASE),
    re.compile(rf"<\s*(?:[\w' ]{{0,20}}\b)?(?:{_PLACEHOLDER_WORDS})\b[\w' ]{{0,20}}>", re.IGNORECASE),
    re.compile(r"\{\{?\s*\w+\s*\}?\}"),
    re.compile(r"(?<![\w-])X{2,}(?:[-/]X+)*(?![\w-])"),
    re.compile(r"_{3,}"),
)
# A dialogue line's own speaker tag ("[doctor]:") is not a placeholder.
_SPEAKER_TAG_AT_START = re.compile(r"^\s*\[[^\]\n]{1,30}\]\s*:?", re.MULTILINE)

# --- PHI-like strings ----------------------------------------------------------------
_PHI_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("phone", re.compile(r"(?:\(\d{3}\)\s?|\b\d{3}[-.\s])\d{3}[-.]\d{4}\b")),
    ("mrn", re.compile(r"\b(?:MRN|medical record (?:number|no\.?)|record #)\s*[:#]?\s*[A-Z]?\d{5,}\b", re.IGNORECASE)),
    (
        "street_address",
        re.compile(
            r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}"
            r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl)\b\.?"
        ),
    ),
    (
        "date_of_birth",
        re.compile(
            r"\b(?:DOB|D\.O\.B\.|date of birth|born on|born)\s*[:\-]?\s*"
            r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|[A-Z][a-z]+\.? \d{1,2},? \d{4}"
            r"|\d{1,2} [A-Z][a-z]+ \d{4}|\d{4}-\d{2}-\d{2})",
            re.IGNORECASE,
        ),
    ),
)

# --- note facts -----------------------------------------------------------------------
_LIST_NUMBERING = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])|(?<=\D)\d+(?:\.\d+)?(?=mg|mcg|ml|mmol|kg|%)", re.IGNORECASE)
# Acronyms that are tests or measurements: HbA1c, ECG, TSH, LDL, CT, MRI.
_ACRONYM = re.compile(r"\b(?=[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z])[A-Za-z][A-Za-z0-9]{1,7}\b")
# Common drug-name endings; a word with one of them is most likely a medicine.
_DRUG_SUFFIXES = (
    "pril",
    "sartan",
    "olol",
    "dipine",
    "statin",
    "formin",
    "gliptin",
    "gliflozin",
    "glutide",
    "cillin",
    "mycin",
    "cycline",
    "floxacin",
    "azole",
    "prazole",
    "tidine",
    "oxetine",
    "pam",
    "zolam",
    "triptan",
    "parin",
    "xaban",
    "vir",
    "mab",
    "nib",
    "sone",
    "olone",
    "profen",
    "thiazide",
    "semide",
    "vastatin",
    "lukast",
    "terol",
    "azepam",
    "idine",
    "amine",
    "caine",
    "codone",
    "morphine",
    "tadine",
    "afil",
    "setron",
    "lamide",
)
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{3,}")
_NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "fifteen": "15",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "hundred": "100",
    "once": "1",
    "twice": "2",
    "half": "0.5",
}
# Acronyms that are not facts: they name the note's own parts or are everyday words.
_NOT_FACTS = {"SOAP", "HPI", "ROS", "PMH", "OK", "II", "III", "IV", "PRN", "BID", "TID", "QID", "QD", "PO"}


def _flag(code: str, message: str, detail: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "detail": detail}


def _dialogue_speech(content: Mapping[str, Any], text: str) -> str:
    turns = content.get("turns")
    if isinstance(turns, list) and turns:
        return "\n".join(str(turn.get("text", "")) for turn in turns if isinstance(turn, Mapping))
    return _SPEAKER_TAG_AT_START.sub("", text)


def _note_body(content: Mapping[str, Any]) -> str:
    return "\n".join(str(value) for value in content.values() if isinstance(value, str))


def missing_section_flags(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    def present(key: str) -> bool:
        parts = (key, *(part for part, _label in SUBJECTIVE_PARTS)) if key == "subjective" else (key,)
        return any(str(content.get(part) or "").strip() for part in parts)

    missing = [heading.capitalize() for key, heading in SOAP_SECTIONS if not present(key)]
    if not missing:
        return []
    return [_flag(MISSING_SECTION, f"Missing or empty SOAP section: {', '.join(missing)}", missing)]


def placeholder_flags(text: str) -> list[dict[str, Any]]:
    found = _unique(match.group(0) for pattern in _PLACEHOLDER_PATTERNS for match in pattern.finditer(text))
    if not found:
        return []
    return [_flag(PLACEHOLDER, f"Placeholder text left in: {', '.join(found[:5])}", found)]


def phi_like_flags(text: str) -> list[dict[str, Any]]:
    flags = []
    for kind, pattern in _PHI_PATTERNS:
        found = _unique(match.group(0) for match in pattern.finditer(text))
        if found:
            label = kind.replace("_", " ")
            flags.append(_flag(PHI_LIKE, f"Looks like PHI ({label}): {', '.join(found[:3])}", {kind: found}))
    return flags


def _numbers(text: str) -> list[str]:
    return _unique(_normalise_number(match.group(0)) for match in _NUMBER.finditer(_LIST_NUMBERING.sub(" ", text)))


def _normalise_number(raw: str) -> str:
    return raw.rstrip("0").rstrip(".") if "." in raw else raw.lstrip("0") or "0"


def _terms(text: str) -> list[str]:
    acronyms = [match.group(0) for match in _ACRONYM.finditer(text) if match.group(0).upper() not in _NOT_FACTS]
    drugs = [word for word in _WORD.findall(text) if word.lower().endswith(_DRUG_SUFFIXES)]
    return _unique(acronyms + drugs)


def unspoken_fact_flags(note_content: Mapping[str, Any], dialogue_speech: str) -> list[dict[str, Any]]:
    """Numbers, doses, test and drug names written in the note but never said in the dialogue."""
    note = _note_body(note_content)
    spoken_lower = dialogue_speech.lower()
    spoken_numbers = set(_numbers(dialogue_speech))
    spoken_numbers |= {digit for word, digit in _NUMBER_WORDS.items() if re.search(rf"\b{word}\b", spoken_lower)}
    numbers = [number for number in _numbers(note) if number not in spoken_numbers]
    terms = [term for term in _terms(note) if not re.search(rf"\b{re.escape(term.lower())}\b", spoken_lower)]
    if not numbers and not terms:
        return []
    shown = ", ".join((numbers + terms)[:8])
    message = f"{len(numbers) + len(terms)} fact(s) in the note are not said in the dialogue: {shown}"
    return [_flag(UNSPOKEN_FACT, message, {"numbers": numbers, "terms": terms})]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value.strip() for value in values if value.strip()))


def version_check_flags(
    *, kind: str, content: dict[str, Any], text: str, note_content: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every automatic check that applies to one version of a case's artefact."""
    flags: list[dict[str, Any]] = []
    readable = text
    if kind == "note":
        flags += missing_section_flags(content)
    elif kind == "dialogue":
        readable = _dialogue_speech(content, text)
        if note_content:
            flags += unspoken_fact_flags(note_content, readable)
    flags += placeholder_flags(readable)
    flags += phi_like_flags(readable)
    return flags
