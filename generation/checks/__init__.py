"""Automatic checks on a case's artefacts: deterministic heuristics that put findings in front
of the reviewer (with the spans of text they point at), fill the queue filters and travel
with the `full` export. They flag, never block: a clinician decides.

Every check is listed in CHECKS with its code, version and severity (framework.py). A check's
version goes up when its rule changes; `manage.py run_checks` then recomputes the stored
results that an older version wrote. The services store results per artefact version
(generation.services.checks); this package never touches the database.

Checks run on text anyone can type, so every pattern runs in linear time: a repetition that
could re-read a long run is bounded (`{0,20}`) or possessive (`*+`, `++`), no two neighbouring
repetitions can match the same characters, and no long run is re-read from many match starts
(tests/generation/test_checks_linear_time.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from generation import rendering
from generation.checks import consistency, dialogue_form, patterns, structure
from generation.checks.coverage import Coverage, coverage, fact_findings, omitted_findings
from generation.checks.facts import DOSE, MEDICATION, Fact
from generation.checks.framework import (
    Check,
    CheckOutcome,
    CheckResultData,
    CheckSubject,
    CodeFacts,
    DialogueLimits,
    Finding,
    Severity,
)
from generation.models import note_sections

NOTE, DIALOGUE = "note", "dialogue"
PRESCRIPTION_CATEGORIES = frozenset({MEDICATION, DOSE})


def _outcome(findings: list[Finding], score: float | None = None) -> CheckOutcome:
    return CheckOutcome(findings=findings, score=score)


@lru_cache(maxsize=16)
def _coverage(note_text: str, dialogue_text: str) -> Coverage:
    """Shared by the four coverage checks of one subject (computed once)."""
    return coverage(note_text=note_text, dialogue_text=dialogue_text)


@lru_cache(maxsize=16)
def _plan_spans(note_text: str) -> tuple[tuple[int, int], ...]:
    return tuple((section.start, section.end) for section in note_sections(note_text) if "plan" in section.fields)


def _in_plan(note_text: str, fact: Fact) -> bool:
    return any(start <= fact.start < end for start, end in _plan_spans(note_text))


def _prescriptions_unspoken(subject: CheckSubject) -> CheckOutcome:
    if not subject.note_text:
        return _outcome([])
    result = _coverage(subject.note_text, subject.dialogue_text)
    missed = [f for f in result.unspoken if f.category in PRESCRIPTION_CATEGORIES and _in_plan(subject.note_text, f)]
    return _outcome(fact_findings(missed, "A prescription in the plan is not said in the dialogue"))


def _facts_unspoken(subject: CheckSubject) -> CheckOutcome:
    if not subject.note_text:
        return _outcome([])
    result = _coverage(subject.note_text, subject.dialogue_text)
    missed = [
        fact
        for fact in result.unspoken
        if fact.category not in PRESCRIPTION_CATEGORIES or not _in_plan(subject.note_text, fact)
    ]
    return _outcome(fact_findings(missed, "Not said in the dialogue"), result.score)


def _polarity(subject: CheckSubject) -> CheckOutcome:
    if not subject.note_text:
        return _outcome([])
    result = _coverage(subject.note_text, subject.dialogue_text)
    return _outcome(fact_findings(result.contradicted, "The dialogue says the opposite"))


def _note_omits(subject: CheckSubject) -> CheckOutcome:
    if not subject.note_text:
        return _outcome([])
    return _outcome(omitted_findings(_coverage(subject.note_text, subject.dialogue_text)))


def _demographics(subject: CheckSubject) -> CheckOutcome:
    texts = {
        "scenario": consistency.scenario_text(subject.scenario),
        NOTE: subject.note_text,
        DIALOGUE: subject.dialogue_text,
    }
    read = {kind: consistency.demographics(text, conversation=kind == DIALOGUE) for kind, text in texts.items() if text}
    own = read.get(subject.kind)
    if own is None:
        return _outcome([])
    others = {kind: found for kind, found in read.items() if kind != subject.kind}
    return _outcome(consistency.mismatch_findings(checked=subject.text, own=own, others=others))


def _code_fit(subject: CheckSubject) -> CheckOutcome:
    note = consistency.demographics(subject.note_text)
    findings = consistency.code_findings(subject.code, note)
    if not findings and (note.sex is None or note.age is None):
        # The scenario fills what the note leaves out; its spans do not point into the note.
        scenario = consistency.demographics(consistency.scenario_text(subject.scenario))
        patient = consistency.Demographics([], note.age or scenario.age, note.sex or scenario.sex)
        findings = [Finding(f.message, (), f.detail) for f in consistency.code_findings(subject.code, patient)]
    return _outcome(findings)


CHECKS: tuple[Check, ...] = (
    Check("placeholder", 2, Severity.ERROR, (NOTE, DIALOGUE), "Placeholder text",
          lambda s: _outcome(patterns.placeholder_findings(s.text, dialogue=s.kind == DIALOGUE))),
    Check("phi_like", 2, Severity.WARNING, (NOTE, DIALOGUE), "PHI-like string",
          lambda s: _outcome(patterns.phi_like_findings(s.text))),
    Check("missing_section", 2, Severity.ERROR, (NOTE,), "Missing SOAP section",
          lambda s: _outcome(structure.missing_section_findings(s.text))),
    Check("soap_thin_section", 1, Severity.WARNING, (NOTE,), "Section says almost nothing",
          lambda s: _outcome(structure.thin_section_findings(s.text))),
    Check("soap_misplaced", 1, Severity.WARNING, (NOTE,), "Content in the wrong section",
          lambda s: _outcome(structure.misplaced_findings(s.text))),
    Check("soap_plan_no_action", 1, Severity.WARNING, (NOTE,), "Plan without an action",
          lambda s: _outcome(structure.plan_action_findings(s.text))),
    Check("coverage_prescription_unspoken", 1, Severity.ERROR, (DIALOGUE,), "Prescription not said",
          _prescriptions_unspoken),
    Check("coverage_unspoken", 1, Severity.WARNING, (DIALOGUE,), "Note fact not said", _facts_unspoken),
    Check("coverage_polarity", 1, Severity.WARNING, (DIALOGUE,), "Said with the opposite polarity", _polarity),
    Check("coverage_note_omits", 1, Severity.WARNING, (DIALOGUE,), "Note omits a dialogue fact", _note_omits),
    Check("dialogue_speakers", 1, Severity.ERROR, (DIALOGUE,), "Unknown or missing speakers",
          lambda s: _outcome(dialogue_form.speaker_findings(s.text))),
    Check("dialogue_turns", 1, Severity.WARNING, (DIALOGUE,), "Turn count, length or runs",
          lambda s: _outcome(dialogue_form.turn_findings(s.text, s.limits))),
    Check("dialogue_meta_text", 1, Severity.ERROR, (DIALOGUE,), "Preamble, header or code fence",
          lambda s: _outcome(dialogue_form.meta_text_findings(s.text))),
    Check("dialogue_icd_code", 1, Severity.WARNING, (DIALOGUE,), "ICD code read aloud",
          lambda s: _outcome(dialogue_form.icd_code_findings(s.text))),
    Check("dialogue_language", 1, Severity.ERROR, (DIALOGUE,), "Not the batch's language",
          lambda s: _outcome(dialogue_form.language_findings(s.text, s.language))),
    Check("demographics_mismatch", 1, Severity.ERROR, (NOTE, DIALOGUE), "Name, age or sex disagree",
          _demographics),
    Check("code_demographics", 1, Severity.ERROR, (NOTE,), "Code does not fit the patient", _code_fit),
)  # fmt: skip
CHECKS_BY_CODE = {check.code: check for check in CHECKS}
CHECK_CODES = tuple(CHECKS_BY_CODE)
# The checks whose result depends on another artefact than the checked one.
CROSS_ARTEFACT_CHECKS = frozenset(
    {"coverage_prescription_unspoken", "coverage_unspoken", "coverage_polarity", "coverage_note_omits",
     "demographics_mismatch", "code_demographics"}
)  # fmt: skip


def run_check(check: Check, subject: CheckSubject) -> CheckResultData:
    outcome = check.run(subject)
    return CheckResultData(check.code, check.version, check.severity, outcome.findings, outcome.score)


def checks_for(kind: str, codes: Collection[str] | None = None) -> list[Check]:
    return [check for check in CHECKS if kind in check.kinds and (codes is None or check.code in codes)]


def run_checks(subject: CheckSubject, codes: Collection[str] | None = None) -> list[CheckResultData]:
    """Every check (or those named) that applies to the subject's artefact."""
    return [run_check(check, subject) for check in checks_for(subject.kind, codes)]


def coverage_misses(*, note_text: str, dialogue_text: str) -> list[str]:
    """The note's facts that the dialogue does not say, or says the other way, in the note's
    own words: what the dialogue polisher is asked to add (one chance, no loop)."""
    result = _coverage(note_text, dialogue_text)
    missed = [*result.unspoken, *result.contradicted]
    described = (
        f"{'not ' if fact.negated else ''}{note_text[fact.start : fact.end]} ({fact.category})"
        for fact in sorted(missed, key=lambda fact: fact.start)
    )
    return list(dict.fromkeys(described))


def dialogue_turn_pairs(content: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    turns = content.get("turns")
    if not isinstance(turns, list):
        return None
    return tuple((str(turn.get("speaker", "")), str(turn.get("text", ""))) for turn in turns if isinstance(turn, dict))


def version_check_flags(
    *, kind: str, content: dict[str, Any], text: str, note_content: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The flags of one artefact text on its own (a dialogue with its note's content): the
    findings of every check that applies, as flag dicts."""
    note_text = text if kind == NOTE else rendering.note_text(note_content) if note_content else ""
    subject = CheckSubject(kind=kind, note_text=note_text, dialogue_text=text if kind == DIALOGUE else "")
    return [flag for result in run_checks(subject) for flag in result.flags(kind=kind)]


def unspoken_fact_flags(note_content: Mapping[str, Any], dialogue_speech: str) -> list[dict[str, Any]]:
    """The note's facts that a dialogue's speech never says (coverage, as flags)."""
    subject = CheckSubject(kind=DIALOGUE, note_text=rendering.note_text(note_content), dialogue_text=dialogue_speech)
    codes = ("coverage_prescription_unspoken", "coverage_unspoken", "coverage_polarity")
    return [flag for result in run_checks(subject, codes) for flag in result.flags(kind=DIALOGUE)]


__all__ = [
    "CHECKS",
    "CHECKS_BY_CODE",
    "CHECK_CODES",
    "CROSS_ARTEFACT_CHECKS",
    "Check",
    "CheckResultData",
    "CheckSubject",
    "CodeFacts",
    "DialogueLimits",
    "Finding",
    "Severity",
    "checks_for",
    "coverage_misses",
    "dialogue_turn_pairs",
    "run_checks",
    "unspoken_fact_flags",
    "version_check_flags",
]
