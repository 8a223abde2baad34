"""The quality-variable survey: clinicians' answers for the open round, and publishing the
round as the snapshot new generations use."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import User
from django.db import transaction

from generation.models import SurveySnapshot
from generation.models.text_limits import (
    COMMENT_MAX_CHARS,
    SURVEY_SUGGESTION_MAX_CHARS,
    VARIABLE_NAME_MAX_CHARS,
    text_within_limit,
)
from review import selectors
from review.models import SurveyResponse, VariableSuggestion
from review.services.errors import ReviewError


def survey_answers_save(
    *,
    clinician: User,
    round_number: int,
    answers: Mapping[int, tuple[int, str]],
    new_variable: tuple[str, str] | None = None,
) -> None:
    """Store a clinician's scores (variable id -> (score, suggestion)) for the open round."""
    for _score, suggestion in answers.values():
        text_within_limit(suggestion.strip(), limit=SURVEY_SUGGESTION_MAX_CHARS, what="A suggestion")
    if new_variable:
        text_within_limit(new_variable[0].strip(), limit=VARIABLE_NAME_MAX_CHARS, what="The variable's name")
        text_within_limit(new_variable[1].strip(), limit=SURVEY_SUGGESTION_MAX_CHARS, what="The variable's description")
    with transaction.atomic():
        for variable_id, (score, suggestion) in answers.items():
            SurveyResponse.objects.update_or_create(
                clinician=clinician,
                variable_id=variable_id,
                round=round_number,
                defaults={"score": score, "suggestion": suggestion.strip()},
            )
        if new_variable and new_variable[0].strip():
            name, description = new_variable
            VariableSuggestion.objects.create(
                clinician=clinician, round=round_number, name=name.strip(), description=description.strip()
            )


def survey_snapshot_publish(*, published_by: User, notes: str = "") -> SurveySnapshot:
    """Freeze the open round's means and spreads as the next snapshot; new generations use it."""
    text_within_limit(notes.strip(), limit=COMMENT_MAX_CHARS, what="The notes")
    with transaction.atomic():
        round_number = selectors.survey_round_current()
        aggregates = [a for a in selectors.survey_aggregate(round_number=round_number) if a.mean is not None]
        if not aggregates:
            raise ReviewError("Nobody has answered the survey in this round yet.")
        return SurveySnapshot.objects.create(
            version=round_number,
            weights={a.variable.key: a.mean for a in aggregates},
            spread={a.variable.key: a.spread if a.spread is not None else 0.0 for a in aggregates},
            respondents=selectors.survey_respondent_count(round_number=round_number),
            published_by=published_by,
            notes=notes.strip(),
        )
