"""In-context examples: approved cases when there are any, otherwise the small set of
hand-written examples shipped in shipped.json.

Which approved cases, for the prompts of a code of chapter C:
1. the cases an admin pinned for C (ExampleRule, in the order they were pinned), then
2. the other approved cases of C, those of the code's own ICD-10 category (first three
   characters) first, each in a rotation: ranked by a hash of (seed, case id), so each
   generated case sees its own few examples (not always the oldest ones), the same seed
   always gives the same examples (runs are reproducible), and a newly approved case
   displaces an example only where it ranks higher. Same-category examples are the
   closest clinically, and an export split by category keeps an example with the pairs
   made from it without merging groups.
Never a case an admin excluded for C, never the generated case itself, and, when the
calls go to a real (non-demo) endpoint, never a case that any call to a local demo
endpoint wrote: a reviewer's edit of demo text is still demo text. Imported cases and the
shipped examples carry no demo text.

Each worker process keeps a chapter's candidates (pins, exclusions, eligible cases) for
EXAMPLE_CANDIDATES_CACHE_SECONDS, so the steps of a batch do not read every approved case of
the chapter each time; an approval or an admin's rule shows in the prompts within that time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from generation.caching import kept_for
from generation.models import AgentCall, ArtefactKind, Case, CaseStatus, ExampleRule, ExampleRuleKind, IcdCode
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


def demo_written() -> Exists:
    """True for a case with any call to a local demo endpoint, or to an endpoint deleted
    since (it can no longer be told apart): its text may be demo text."""
    calls = AgentCall.objects.filter(case=OuterRef("pk"))
    return Exists(calls.filter(Q(endpoint__is_local_demo=True) | Q(endpoint__isnull=True)))


def example_eligible_cases(*, for_demo_endpoint: bool) -> QuerySet[Case]:
    """The approved cases that may be shown to an endpoint: a real endpoint never gets demo text."""
    cases = Case.objects.filter(status=CaseStatus.APPROVED)
    if not for_demo_endpoint:
        cases = cases.exclude(demo_written())
    return cases


def rotation_rank(*, seed: str, case_id: int) -> bytes:
    """The place of a case in the rotation of `seed` (rendezvous hashing)."""
    return hashlib.sha256(f"{seed}:{case_id}".encode()).digest()


@dataclass(frozen=True)
class ChapterCandidates:
    """The approved cases a chapter's prompts may show: the pinned ones in pin order, then
    the others with their codes (neither holds an excluded case)."""

    pinned: tuple[int, ...]
    others: tuple[tuple[int, str], ...]


def _chapter_candidates_read(*, chapter: str, for_demo_endpoint: bool) -> ChapterCandidates:
    rules = ExampleRule.objects.filter(chapter=chapter)
    excluded = set(rules.filter(kind=ExampleRuleKind.EXCLUDE).values_list("case_id", flat=True))
    eligible = example_eligible_cases(for_demo_endpoint=for_demo_endpoint)
    pinned_in_order = rules.filter(kind=ExampleRuleKind.PIN).order_by("id").values_list("case_id", flat=True)
    eligible_pins = set(eligible.filter(pk__in=pinned_in_order).values_list("pk", flat=True))
    pinned = [case_id for case_id in pinned_in_order if case_id in eligible_pins and case_id not in excluded]
    others = eligible.filter(code__chapter=chapter).exclude(pk__in=pinned).values_list("pk", "code__code")
    return ChapterCandidates(
        pinned=tuple(pinned), others=tuple((pk, other) for pk, other in others if pk not in excluded)
    )


@kept_for("EXAMPLE_CANDIDATES_CACHE_SECONDS")
def chapter_candidates(*, chapter: str, for_demo_endpoint: bool) -> ChapterCandidates:
    """The chapter's candidates, as read at most EXAMPLE_CANDIDATES_CACHE_SECONDS ago by this
    process (read every time when that is 0)."""
    return _chapter_candidates_read(chapter=chapter, for_demo_endpoint=for_demo_endpoint)


def _ordered_candidate_ids(
    *, code: IcdCode, seed: str, for_demo_endpoint: bool, exclude_case_id: int | None
) -> list[int]:
    category = code.code[:3]
    candidates = chapter_candidates(chapter=code.chapter, for_demo_endpoint=for_demo_endpoint)
    rotated = sorted(
        ((pk, other_code) for pk, other_code in candidates.others if pk != exclude_case_id),
        key=lambda row: (row[1][:3] != category, rotation_rank(seed=seed, case_id=row[0])),
    )
    return [*(pk for pk in candidates.pinned if pk != exclude_case_id), *(pk for pk, _code in rotated)]


def _complete_examples(case_ids: list[int], *, page: int) -> Iterator[WorkedExample]:
    """The cases in the given order, a page at a time, skipping any without all three texts."""
    for start in range(0, len(case_ids), page):
        ids = case_ids[start : start + page]
        cases = Case.objects.select_related("code").in_bulk(ids)
        current = current_versions_of_cases(case_ids=ids)
        for case_id in ids:
            latest = [
                current.get((case_id, kind))
                for kind in (ArtefactKind.SCENARIO, ArtefactKind.NOTE, ArtefactKind.DIALOGUE)
            ]
            scenario, note, dialogue = latest
            if scenario is None or note is None or dialogue is None:
                continue
            code = cases[case_id].assigned_code()
            yield WorkedExample(
                code=code.code,
                description=code.description,
                chapter=code.chapter,
                scenario=scenario.content,
                note=note.content,
                dialogue=dialogue.content,
                approved_case_id=case_id,
            )


def examples_for_code(
    *,
    code: IcdCode,
    limit: int,
    seed: str = "",
    for_demo_endpoint: bool = False,
    exclude_case_id: int | None = None,
) -> list[WorkedExample]:
    """Up to `limit` worked examples for the prompts of `code` (see the module's docstring);
    `seed` picks the rotation (the pipeline passes the generated case's id)."""
    if limit <= 0:
        return []
    ordered = _ordered_candidate_ids(
        code=code, seed=seed, for_demo_endpoint=for_demo_endpoint, exclude_case_id=exclude_case_id
    )
    approved: list[WorkedExample] = []
    for example in _complete_examples(ordered, page=limit * 3):
        approved.append(example)
        if len(approved) == limit:
            break
    if approved:
        return approved
    shipped = sorted(shipped_examples(), key=lambda example: example.chapter != code.chapter)
    return list(shipped[:limit])
