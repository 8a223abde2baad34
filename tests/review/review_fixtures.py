"""Cases waiting for review, built through the real version service."""

from __future__ import annotations

from typing import Any

from generation.models import REVIEW_STAGE_BY_STATUS, ArtefactKind, Case, CaseStatus, VersionSource
from generation.services.cases import artefact_version_create
from review.selectors import VISIBLE_KINDS
from tests.factories import SAMPLE_DIALOGUE, SAMPLE_NOTE, SAMPLE_SCENARIO, CaseFactory

CONTENT = {
    ArtefactKind.SCENARIO: SAMPLE_SCENARIO,
    ArtefactKind.NOTE: SAMPLE_NOTE,
    ArtefactKind.DIALOGUE: SAMPLE_DIALOGUE,
}


def case_in_review(
    status: str = CaseStatus.PAIR_REVIEW,
    *,
    note: dict[str, Any] | None = None,
    dialogue: dict[str, Any] | None = None,
    **case_fields: Any,
) -> Case:
    """A case in `status` with an LLM version of every artefact that status shows."""
    case = CaseFactory(status=status, **case_fields)
    content = {**CONTENT, ArtefactKind.NOTE: note or SAMPLE_NOTE, ArtefactKind.DIALOGUE: dialogue or SAMPLE_DIALOGUE}
    for kind in VISIBLE_KINDS[REVIEW_STAGE_BY_STATUS[status]]:
        artefact_version_create(case=case, kind=kind, content=content[kind], source=VersionSource.LLM_POLISHED)
    return case


def seen(case: Case) -> dict[str, int]:
    """The version numbers a reviewer sees on screen now."""
    from generation.selectors import current_versions

    return {kind: version.number for kind, version in current_versions(case=case).items()}


def seen_post(case: Case) -> dict[str, int]:
    return {f"seen_{kind}": number for kind, number in seen(case).items()}
