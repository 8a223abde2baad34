"""The shape every automatic check shares.

A check has a code, a version (raised whenever its rule changes, so `manage.py run_checks`
knows which stored results are stale), a severity and the artefact kinds it reads. It takes
one case's current texts (`CheckSubject`) and returns findings: a message and character spans
into the text of one artefact (`span_kind`: usually the checked one; a coverage miss points
into the note).

Checks are pure functions of their subject: no database, so the measurement script and the
benchmark run them on files, and the service stores what they return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

Span = tuple[int, int]


@dataclass(frozen=True)
class Finding:
    message: str
    spans: tuple[Span, ...] = ()
    detail: Any = None
    span_kind: str = ""  # the artefact whose text the spans index; "" = the checked one


@dataclass(frozen=True)
class CodeFacts:
    """What the checks need of the case's ICD-10-CM code (read from IcdCode)."""

    code: str
    description: str = ""
    chapter: str = ""
    block: str = ""
    block_title: str = ""


@dataclass(frozen=True)
class DialogueLimits:
    """Bounds of a plausible conversation; a batch may override them (config "check_limits")."""

    min_turns: int = 6
    max_turns: int = 400
    min_turn_chars: int = 2
    max_turn_words: int = 600
    max_run: int = 6  # turns in a row by one speaker
    min_mean_turn_words: float = 3.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> DialogueLimits:
        values = dict((config or {}).get("check_limits") or {})
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)


@dataclass(frozen=True)
class CheckSubject:
    """One case's current texts, as the checks read them. `kind` is the checked artefact."""

    kind: str
    note_text: str = ""
    dialogue_text: str = ""
    dialogue_turns: tuple[tuple[str, str], ...] | None = None  # structured turns when known
    scenario: Mapping[str, Any] = field(default_factory=dict)
    code: CodeFacts | None = None
    language: str = "en"
    limits: DialogueLimits = field(default_factory=DialogueLimits)

    @property
    def text(self) -> str:
        return {"note": self.note_text, "dialogue": self.dialogue_text}.get(self.kind, "")


@dataclass(frozen=True)
class CheckOutcome:
    findings: list[Finding]
    score: float | None = None


@dataclass(frozen=True)
class Check:
    code: str
    version: int
    severity: Severity
    kinds: tuple[str, ...]
    title: str
    run: Callable[[CheckSubject], CheckOutcome]


@dataclass(frozen=True)
class CheckResultData:
    """One check's verdict on one artefact version, as stored and exported."""

    code: str
    version: int
    severity: Severity
    findings: list[Finding]
    score: float | None = None

    def flags(self, *, kind: str) -> list[dict[str, Any]]:
        """The findings as flag dicts (the shape ArtefactVersion.check_flags has always had,
        plus severity, version and spans)."""
        return [finding_flag(self.code, self.version, self.severity, finding, kind=kind) for finding in self.findings]


def finding_flag(code: str, version: int, severity: str, finding: Finding, *, kind: str) -> dict[str, Any]:
    return {
        "code": code,
        "version": version,
        "severity": str(severity),
        "message": finding.message,
        "spans": [list(span) for span in finding.spans],
        "span_kind": finding.span_kind or kind,
        "detail": finding.detail,
    }


def merge_spans(spans: list[Span]) -> tuple[Span, ...]:
    ordered = sorted(span for span in spans if span[1] > span[0])
    merged: list[list[int]] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((start, end) for start, end in merged)
