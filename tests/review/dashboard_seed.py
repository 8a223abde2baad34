"""A small, fully known dataset for the dashboard tests (the expectations in the tests are
worked out by hand from what is written here, not from the code under test)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User

from generation import rendering
from generation.models import (
    AgentCall,
    AgentName,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    GenerationBatch,
    VersionSource,
)
from review.models import ReviewDecision
from review.services.edit_burden import edit_burden_record
from tests.factories import (
    SAMPLE_DIALOGUE,
    SAMPLE_NOTE,
    CaseFactory,
    ClinicianFactory,
    GenerationBatchFactory,
    IcdCodeFactory,
)

CALL_COST = Decimal("0.010000")
CALL_INPUT, CALL_OUTPUT = 100, 50
# The sample plan is "Start metformin 500 mg by mouth twice daily. Recheck HbA1c in 3 months."
# (13 words); the edit below substitutes one word and deletes two.
EDITED_NOTE = {**SAMPLE_NOTE, "plan": "Start metformin 1000 mg twice daily. Recheck HbA1c in 3 months."}


@dataclass
class Seeded:
    batch_x: GenerationBatch
    batch_y: GenerationBatch
    r1: User
    r2: User
    cases: dict[str, Case]


def _call(case: Case, agent: str, model: str) -> AgentCall:
    return AgentCall.objects.create(
        case=case,
        agent=agent,
        endpoint_name="test",
        model=model,
        prompt_version=f"{agent}@v1",
        request_messages=[],
        input_tokens=CALL_INPUT,
        output_tokens=CALL_OUTPUT,
        cost=CALL_COST,
    )


def _version(case: Case, kind: str, number: int, content: dict[str, Any], **fields: Any) -> ArtefactVersion:
    return ArtefactVersion.objects.create(
        case=case, kind=kind, number=number, content=content, text=rendering.render(kind, content), **fields
    )


def produced_case(*, batch: GenerationBatch, code: Any, status: str, **fields: Any) -> tuple[Case, dict[str, Any]]:
    """A case whose note and dialogue were written by the polishers (one call each)."""
    case = CaseFactory(batch=batch, code=code, status=status, **fields)
    note_call = _call(case, AgentName.NOTE_POLISHER, batch.model)
    dialogue_call = _call(case, AgentName.DIALOGUE_POLISHER, batch.model)
    versions = {
        "note_version": _version(case, ArtefactKind.NOTE, 1, SAMPLE_NOTE, source=VersionSource.LLM_POLISHED,
                                 agent_call=note_call),
        "dialogue_version": _version(case, ArtefactKind.DIALOGUE, 1, SAMPLE_DIALOGUE,
                                     source=VersionSource.LLM_POLISHED, agent_call=dialogue_call),
    }  # fmt: skip
    return case, versions


def decision(case: Case, reviewer: User, action: str, seconds: int, versions: dict[str, Any], **fields: Any) -> None:
    ReviewDecision.objects.create(
        case=case, stage="pair", reviewer=reviewer, action=action, seconds_spent=seconds, **versions, **fields
    )


def dashboard_dataset() -> Seeded:
    """Chapter 4: E11.9 (frequency 60, block E08-E13) and E78.5 (20, E70-E88); chapter 10:
    J45.909 (20, J40-J4A). Batch X runs model-x, batch Y model-y.

    c1 E11.9 X approved: r1 approves (30 s), r2 approves (90 s)
    c2 E11.9 X approved after r1 edits the plan: r1's verdict is an edit (120 s)
    c3 E78.5 X rejected by r2 (factually wrong, 60 s); flagged by the placeholder check
    c4 J45.909 Y in pair review: r1 sent it back for regeneration (10 s)
    c5 J45.909 Y planned, nothing generated
    """
    e11 = IcdCodeFactory(
        code="E11.9", chapter="4", chapter_title="Endocrine", block="E08-E13", block_title="Diabetes", frequency=60
    )
    e78 = IcdCodeFactory(
        code="E78.5", chapter="4", chapter_title="Endocrine", block="E70-E88", block_title="Metabolic", frequency=20
    )
    j45 = IcdCodeFactory(code="J45.909", chapter="10", chapter_title="Respiratory", block="J40-J4A",
                         block_title="Chronic lower respiratory", frequency=20)  # fmt: skip
    batch_x = GenerationBatchFactory(name="Batch X", model="model-x")
    batch_y = GenerationBatchFactory(name="Batch Y", model="model-y")
    r1, r2 = ClinicianFactory(username="r1"), ClinicianFactory(username="r2")

    c1, v1 = produced_case(batch=batch_x, code=e11, status=CaseStatus.APPROVED, slot=1)
    decision(c1, r1, "approve", 30, v1)
    decision(c1, r2, "approve", 90, v1)

    c2, v2 = produced_case(batch=batch_x, code=e11, status=CaseStatus.APPROVED, slot=2)
    edit = _version(c2, ArtefactKind.NOTE, 2, EDITED_NOTE, source=VersionSource.HUMAN_EDIT, author=r1,
                    parent=v2["note_version"])  # fmt: skip
    decision(c2, r1, "edit", 120, {**v2, "note_version": edit})

    c3, v3 = produced_case(
        batch=batch_x, code=e78, status=CaseStatus.REJECTED, slot=1, has_check_flags=True,
        check_summary=" placeholder:error ",
    )  # fmt: skip
    decision(c3, r2, "reject", 60, v3, reason="factually_wrong", comment="Wrong dose.")

    c4, v4 = produced_case(batch=batch_y, code=j45, status=CaseStatus.PAIR_REVIEW, slot=1)
    decision(c4, r1, "regenerate", 10, v4, comment="Say the inhaler dose.")

    c5 = CaseFactory(batch=batch_y, code=j45, status=CaseStatus.PLANNED, slot=2)
    for approved in (c1, c2):  # what the approval does after its commit
        edit_burden_record(case_id=approved.pk)
    return Seeded(batch_x, batch_y, r1, r2, {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5})
