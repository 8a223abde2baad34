"""Every version of a case with who and when, word-level diffs between any two, and
the provenance: pipeline steps and agent calls with the raw LLM output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from generation.models import ArtefactKind, ArtefactVersion
from generation.rendering import NOTE_FIELDS
from review import selectors
from review.diffing import DiffRun, has_changes, word_diff
from review.views._common import ADJUDICATE, REVIEW, ReviewRequest, page_or_partial, queue_for, requires
from review.views.item import SECTION_LABELS, _case


@dataclass(frozen=True)
class PartDiff:
    label: str
    runs: list[DiffRun]
    note: str = ""

    @property
    def changed(self) -> bool:
        return has_changes(self.runs) or bool(self.note)


def _note_diffs(before: dict[str, Any], after: dict[str, Any]) -> list[PartDiff]:
    keys = [key for key in NOTE_FIELDS if before.get(key) or after.get(key)]
    return [
        PartDiff(SECTION_LABELS[key], word_diff(str(before.get(key) or ""), str(after.get(key) or ""))) for key in keys
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


Differ = Callable[[dict[str, Any], dict[str, Any]], list[PartDiff]]
DIFFERS: dict[str, Differ] = {
    ArtefactKind.NOTE: _note_diffs,
    ArtefactKind.DIALOGUE: _dialogue_diffs,
    ArtefactKind.SCENARIO: _scenario_diffs,
}


def _number(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def _pick_pair(
    versions: list[ArtefactVersion], a: int | None, b: int | None
) -> tuple[ArtefactVersion | None, ArtefactVersion | None]:
    by_number = {v.number: v for v in versions}
    after = by_number.get(b) if b else (versions[-1] if versions else None)
    if a:
        before = by_number.get(a)
    elif after is not None and after.parent_id:
        before = next((v for v in versions if v.pk == after.parent_id), None)
    else:
        before = by_number.get(after.number - 1) if after else None
    return before, after


@requires(REVIEW)
@require_GET
def history(request: ReviewRequest, case_id: int) -> HttpResponse:
    case = _case(case_id)
    all_versions = selectors.case_history(case=case)
    kinds = [kind for kind in ArtefactKind.values if any(v.kind == kind for v in all_versions)]
    kind = request.GET.get("kind") if request.GET.get("kind") in kinds else (kinds[-1] if kinds else "")
    of_kind = [v for v in all_versions if v.kind == kind]
    before, after = _pick_pair(of_kind, _number(request.GET.get("a")), _number(request.GET.get("b")))
    diffs = DIFFERS[kind](before.content or {}, after.content or {}) if before and after and kind else []
    context = {
        "case": case,
        "queue": queue_for(request, case),
        "versions": all_versions,
        "kinds": kinds,
        "kind": kind,
        "of_kind": of_kind,
        "before": before,
        "after": after,
        "diffs": diffs,
        "decisions": selectors.decisions_visible_to(
            case=case, viewer=request.user, can_adjudicate=request.user.has_perm(ADJUDICATE)
        ),
    }
    return page_or_partial(request, "review/history.html", "version-diff", context)


@requires(REVIEW)
@require_GET
def provenance(request: ReviewRequest, case_id: int) -> HttpResponse:
    case = _case(case_id)
    context = {"case": case, "queue": queue_for(request, case), "provenance": selectors.case_provenance(case=case)}
    return page_or_partial(request, "review/provenance.html", "provenance-panel", context)
