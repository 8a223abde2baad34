"""The edit burden of an approved pair: per SOAP section and for the dialogue, how many words
reviewers inserted, deleted or substituted (word-level Levenshtein distance) between the text
the agents handed to review and the approved text.

Computed once per approval, after the approving transaction commits (a distance over a few
hundred words per part is cheap, but far too slow to redo for every case when a dashboard
loads), and stored in EditBurden, which the dashboard sums in SQL.
"""

from __future__ import annotations

import re

from django.db import transaction
from rapidfuzz.distance import Levenshtein

from generation.models import (
    DELIVERED_SOURCES,
    SUBJECTIVE_FIELDS,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    note_field_texts,
)
from generation.selectors import current_versions
from review.models import EditBurden, EditedPart

_WORD = re.compile(r"\S+")
NOTE_PARTS = (EditedPart.SUBJECTIVE, EditedPart.OBJECTIVE, EditedPart.ASSESSMENT, EditedPart.PLAN)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def word_edit_distance(before: str, after: str) -> int:
    """Words inserted, deleted or substituted to turn `before` into `after`."""
    return int(Levenshtein.distance(words(before), words(after)))


def note_part_texts(note_text: str) -> dict[str, str]:
    """The text of each SOAP section; Subjective includes its parts (chief complaint, HPI, ROS)."""
    fields = note_field_texts(note_text)
    subjective = "\n".join(fields[name] for name in SUBJECTIVE_FIELDS if name in fields)
    return {
        EditedPart.SUBJECTIVE: subjective,
        **{part: fields.get(str(part), "") for part in NOTE_PARTS if part != EditedPart.SUBJECTIVE},
    }


def part_texts(version: ArtefactVersion) -> dict[str, str]:
    if version.kind == ArtefactKind.NOTE:
        return note_part_texts(version.text)
    return {EditedPart.DIALOGUE: version.text}


def generated_version(*, case: Case, kind: str) -> ArtefactVersion | None:
    """What the agents (or an import) last handed to review: the newest delivered version."""
    versions = case.versions.filter(kind=kind, source__in=DELIVERED_SOURCES).order_by("-number")
    return versions.first()


def edit_burden_record(*, case_id: int) -> int:
    """Store the edit burden of an approved case's note sections and dialogue; returns the
    number of parts stored (none when the case is not approved, or nothing was generated)."""
    case = Case.objects.get(pk=case_id)
    if case.status != CaseStatus.APPROVED:
        return 0
    approved = current_versions(case=case)
    rows = []
    for kind in (ArtefactKind.NOTE, ArtefactKind.DIALOGUE):
        generated = generated_version(case=case, kind=kind)
        final = approved.get(kind)
        if generated is None or final is None:
            continue
        before, after = part_texts(generated), part_texts(final)
        rows += [
            EditBurden(
                case=case,
                part=part,
                generated_version=generated,
                approved_version=final,
                generated_words=len(words(text)),
                approved_words=len(words(after[part])),
                distance=word_edit_distance(text, after[part]),
            )
            for part, text in before.items()
        ]
    # Measured first, then written in one statement: one commit per approval, not one per part.
    EditBurden.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["case", "part"],
        update_fields=[
            "generated_version",
            "approved_version",
            "generated_words",
            "approved_words",
            "distance",
            "computed_at",
        ],
    )
    return len(rows)


def edit_burden_record_on_commit(*, case_id: int) -> None:
    """Measure once the approval has committed: nothing slow runs under the case's lock. A
    failure is logged, never shown to the reviewer whose approval is already saved;
    `manage.py measure_edit_burden` measures what was missed."""
    transaction.on_commit(lambda: edit_burden_record(case_id=case_id), robust=True)


def missing_edit_burdens_record(*, batch_size: int = 500) -> int:
    """Measure every approved case that has no edit burden yet (pairs approved before the
    dashboards existed); returns how many were measured. Run twice, the second run finds none."""
    measured = 0
    last_id = 0
    while True:
        ids = list(
            Case.objects.filter(pk__gt=last_id, status=CaseStatus.APPROVED, edit_burdens__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return measured
        last_id = ids[-1]
        measured += sum(1 for case_id in ids if edit_burden_record(case_id=case_id))
