"""Writes of the review workspace, one module per concern: decisions (and what they imply
for the case), inline edits, assignments, the survey and guidelines. Re-exported here, so
`from review import services` and `from review.services import X` keep working."""

from review.services.assignments import AssignmentMode, assignment_plan, queue_assign, reviewers_assign
from review.services.codes import APPROVAL_NEEDS_CODE, billable_code_for, case_code_assign
from review.services.decisions import (
    MAX_SECONDS_SPENT,
    adjudication_record,
    regeneration_request,
    review_decision_record,
)
from review.services.edits import TurnOperation, dialogue_turn_change, note_section_edit
from review.services.errors import EditConflict, RegenerationLimitReached, ReviewError, StaleReview
from review.services.guidelines import guideline_save
from review.services.survey import survey_answers_save, survey_snapshot_publish

__all__ = [
    "APPROVAL_NEEDS_CODE",
    "billable_code_for",
    "case_code_assign",
    "MAX_SECONDS_SPENT",
    "AssignmentMode",
    "EditConflict",
    "RegenerationLimitReached",
    "ReviewError",
    "StaleReview",
    "TurnOperation",
    "adjudication_record",
    "assignment_plan",
    "dialogue_turn_change",
    "guideline_save",
    "note_section_edit",
    "queue_assign",
    "regeneration_request",
    "review_decision_record",
    "reviewers_assign",
    "survey_answers_save",
    "survey_snapshot_publish",
]
