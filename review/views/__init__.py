"""Views of the review workspace; one module per screen, re-exported here."""

from review.views.dashboards import dashboard_csv, dashboard_figure, dashboard_index
from review.views.edits import dialogue_turn_edit, dialogue_turn_move, note_section_edit
from review.views.history import history, provenance
from review.views.item import adjudicate, assign, code_assign, decide, item, regenerate, regeneration_status
from review.views.manage import agreement_report, guideline_edit, guideline_list
from review.views.queue import queue_assign, queue_list, review_home
from review.views.survey import survey, survey_publish, survey_results

__all__ = [
    "adjudicate",
    "agreement_report",
    "assign",
    "code_assign",
    "dashboard_csv",
    "dashboard_figure",
    "dashboard_index",
    "decide",
    "dialogue_turn_edit",
    "dialogue_turn_move",
    "guideline_edit",
    "guideline_list",
    "history",
    "item",
    "note_section_edit",
    "provenance",
    "queue_assign",
    "queue_list",
    "regenerate",
    "regeneration_status",
    "review_home",
    "survey",
    "survey_publish",
    "survey_results",
]
