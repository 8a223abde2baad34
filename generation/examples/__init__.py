"""In-context examples: approved cases of the same ICD chapter when there are any,
otherwise the small set of hand-written examples shipped in shipped.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from generation.models import ArtefactKind, Case, CaseStatus, IcdCode
from generation.selectors import current_versions_of_cases

SHIPPED_FILE = Path(__file__).resolve().parent / "shipped.json"


@dataclass(frozen=True)
class WorkedExample:
    code: str
    description: str
    chapter: str
    scenario: dict[str, Any]
    note: dict[str, Any]
    dialogue: dict[str, Any]
    approved_case_id: int | None = None


@lru_cache(maxsize=1)
def shipped_examples() -> tuple[WorkedExample, ...]:
    rows = json.loads(SHIPPED_FILE.read_text(encoding="utf-8"))
    return tuple(WorkedExample(**row) for row in rows)


def _approved_examples(*, chapter: str, limit: int) -> list[WorkedExample]:
    # Oldest approvals first: the examples (and so the cached prompt prefix) stay the
    # same as more cases get approved.
    cases = list(
        Case.objects.filter(status=CaseStatus.APPROVED, code__chapter=chapter)
        .select_related("code")
        .order_by("id")[: limit * 3]
    )
    current = current_versions_of_cases(case_ids=[case.pk for case in cases])
    found: list[WorkedExample] = []
    for case in cases:
        code = case.assigned_code()
        latest = {kind: current.get((case.pk, kind)) for kind in ArtefactKind.values}
        if any(version is None for version in latest.values()):
            continue
        found.append(
            WorkedExample(
                code=code.code,
                description=code.description,
                chapter=code.chapter,
                scenario=latest[ArtefactKind.SCENARIO].content,  # type: ignore[union-attr]
                note=latest[ArtefactKind.NOTE].content,  # type: ignore[union-attr]
                dialogue=latest[ArtefactKind.DIALOGUE].content,  # type: ignore[union-attr]
                approved_case_id=case.pk,
            )
        )
        if len(found) == limit:
            break
    return found


def examples_for_code(*, code: IcdCode, limit: int) -> list[WorkedExample]:
    if limit <= 0:
        return []
    approved = _approved_examples(chapter=code.chapter, limit=limit)
    if approved:
        return approved
    shipped = sorted(shipped_examples(), key=lambda example: example.chapter != code.chapter)
    return list(shipped[:limit])
