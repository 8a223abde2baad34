"""How much text a person may submit, field by field: the one home of the limits that the
forms (`max_length`), the services (`text_within_limit`) and the database
(`length_at_most` check constraints) enforce.

Every text a person can type is bounded, so no request can make a check, a diff or a
prompt work through megabytes. A refusal names the field and both lengths, so the writer
knows how much to cut.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from generation.errors import DomainError

NOTE_SECTION_MAX_CHARS = 20_000
DIALOGUE_TURN_MAX_CHARS = 5_000
# Reviewer comments, reject reasons, regeneration and rerun comments, snapshot notes.
COMMENT_MAX_CHARS = 5_000
SURVEY_SUGGESTION_MAX_CHARS = 2_000
VARIABLE_NAME_MAX_CHARS = 120
GUIDELINE_TITLE_MAX_CHARS = 200
GUIDELINE_BODY_MAX_CHARS = 100_000
BATCH_NAME_MAX_CHARS = 200
ROLE_DESCRIPTION_MAX_CHARS = 2_000
DISCARD_REASON_MAX_CHARS = 500
# Search boxes and comma-separated lists of codes: read, never stored.
SEARCH_MAX_CHARS = 200
CODE_LIST_MAX_CHARS = 100_000
# The rendered text of one artefact version, whoever wrote it. Above a note of seven full
# sections (7 x 20,000), an imported cell (review.datasets.imports: 100,000) and any model
# reply, so no generated or imported text is refused; a dialogue grown turn by turn stops here.
ARTEFACT_TEXT_MAX_CHARS = 200_000


class TextTooLong(DomainError):
    """A submitted text is longer than its field allows; nothing was saved."""


def text_within_limit(text: str, *, limit: int, what: str) -> str:
    """`text`, or TextTooLong when it has more than `limit` characters. `what` names the
    field as the writer sees it ("The comment")."""
    if len(text) > limit:
        raise TextTooLong(f"{what} is {len(text):,} characters long; the limit is {limit:,}. Shorten it and try again.")
    return text


def length_at_most(field: str, limit: int, *, name: str) -> models.CheckConstraint:
    """The database's copy of a limit. PostgreSQL's varchar enforces a CharField's
    max_length, SQLite's does not, and a TextField has none on either."""
    return models.CheckConstraint(condition=LessThanOrEqual(Length(field), limit), name=name)
