"""Diffs between two versions of an artefact for the history screen: word-level runs per
note section, per scenario field and per dialogue turn (turns aligned by content).

The template escapes each run; nothing here builds HTML, so LLM text stays inert.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Literal

from generation.models import NOTE_FIELD_LABELS, NOTE_FIELDS, ArtefactKind, ArtefactVersion

Op = Literal["equal", "insert", "delete"]
# A word with its trailing whitespace, so joining the runs gives the texts back exactly.
_TOKEN = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class DiffRun:
    op: Op
    text: str


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text or "")


def word_diff(before: str, after: str) -> list[DiffRun]:
    """Runs that read as `after`, with deleted words of `before` marked in place."""
    old, new = _tokens(before), _tokens(after)
    # Compare words without their whitespace so a re-wrapped line is not a change.
    matcher = SequenceMatcher(a=[t.strip() for t in old], b=[t.strip() for t in new], autojunk=False)
    runs: list[DiffRun] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            runs.append(DiffRun("equal", "".join(new[b0:b1])))
            continue
        if a1 > a0:
            runs.append(DiffRun("delete", "".join(old[a0:a1])))
        if b1 > b0:
            runs.append(DiffRun("insert", "".join(new[b0:b1])))
    return runs


def has_changes(runs: list[DiffRun]) -> bool:
    return any(run.op != "equal" for run in runs)


@dataclass(frozen=True)
class PartDiff:
    """The diff of one part of an artefact (a note section, a scenario field, a turn)."""

    label: str
    runs: list[DiffRun]
    note: str = ""

    @property
    def changed(self) -> bool:
        return has_changes(self.runs) or bool(self.note)


def _note_diffs(before: dict[str, Any], after: dict[str, Any]) -> list[PartDiff]:
    keys = [key for key in NOTE_FIELDS if before.get(key) or after.get(key)]
    return [
        PartDiff(NOTE_FIELD_LABELS[key], word_diff(str(before.get(key) or ""), str(after.get(key) or "")))
        for key in keys
    ]


def _turn_line(turn: dict[str, Any]) -> str:
    return f"{turn.get('speaker', '')}: {turn.get('text', '')}"


def _turn_diff(before: dict[str, Any] | None, after: dict[str, Any] | None, label: str) -> PartDiff:
    old_speaker, new_speaker = (before or {}).get("speaker", ""), (after or {}).get("speaker", "")
    note = ""
    if before is None:
        note = "added"
    elif after is None:
        note = "deleted"
    elif old_speaker != new_speaker:
        note = f"speaker {old_speaker} → {new_speaker}"
    runs = word_diff(str((before or {}).get("text", "")), str((after or {}).get("text", "")))
    return PartDiff(f"{label} [{new_speaker or old_speaker}]", runs, note)


def _dialogue_diffs(before: dict[str, Any], after: dict[str, Any]) -> list[PartDiff]:
    """Turns aligned by content, so inserting or moving a turn does not mark every later turn changed."""
    old, new = list(before.get("turns", [])), list(after.get("turns", []))
    matcher = SequenceMatcher(a=[_turn_line(t) for t in old], b=[_turn_line(t) for t in new], autojunk=False)
    diffs: list[PartDiff] = []
    for _tag, a0, a1, b0, b1 in matcher.get_opcodes():
        for offset in range(max(a1 - a0, b1 - b0)):
            i, j = a0 + offset, b0 + offset
            before_turn = old[i] if i < a1 else None
            after_turn = new[j] if j < b1 else None
            label = f"Turn {j + 1}" if after_turn is not None else f"Old turn {i + 1}"
            diffs.append(_turn_diff(before_turn, after_turn, label))
    return diffs


def _scenario_diffs(before: dict[str, Any], after: dict[str, Any]) -> list[PartDiff]:
    old_vars, new_vars = before.get("variables") or {}, after.get("variables") or {}
    keys = list(dict.fromkeys([*old_vars, *new_vars]))
    diffs = [PartDiff("Role", word_diff(str(before.get("role") or ""), str(after.get("role") or "")))]
    return diffs + [
        PartDiff(key.replace("_", " ").capitalize(), word_diff(str(old_vars.get(key, "")), str(new_vars.get(key, ""))))
        for key in keys
    ]


_DIFFERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[PartDiff]]] = {
    ArtefactKind.NOTE: _note_diffs,
    ArtefactKind.DIALOGUE: _dialogue_diffs,
    ArtefactKind.SCENARIO: _scenario_diffs,
}


def artefact_diff(*, kind: str, before: ArtefactVersion, after: ArtefactVersion) -> list[PartDiff]:
    return _DIFFERS[kind](before.content or {}, after.content or {})


def versions_to_compare(
    versions: list[ArtefactVersion], *, before_number: int | None, after_number: int | None
) -> tuple[ArtefactVersion | None, ArtefactVersion | None]:
    """The (before, after) pair of one kind's versions (oldest first) to diff: the numbers
    asked for, else the newest version against the one it was made from."""
    by_number = {v.number: v for v in versions}
    after = by_number.get(after_number) if after_number else (versions[-1] if versions else None)
    if before_number:
        before = by_number.get(before_number)
    elif after is not None and after.parent_id:
        before = next((v for v in versions if v.pk == after.parent_id), None)
    else:
        before = by_number.get(after.number - 1) if after else None
    return before, after
