"""Review guidelines, edited by admins and shown beside every item."""

from __future__ import annotations

from django.contrib.auth.models import User

from generation.models.text_limits import GUIDELINE_BODY_MAX_CHARS, GUIDELINE_TITLE_MAX_CHARS, text_within_limit
from review.models import Guideline


def guideline_save(*, guideline: Guideline, title: str, body_markdown: str, editor: User) -> Guideline:
    text_within_limit(title.strip(), limit=GUIDELINE_TITLE_MAX_CHARS, what="The title")
    text_within_limit(body_markdown, limit=GUIDELINE_BODY_MAX_CHARS, what="The guideline")
    guideline.title = title.strip()
    guideline.body_markdown = body_markdown
    guideline.updated_by = editor
    guideline.save(update_fields=["title", "body_markdown", "updated_by", "updated_at"])
    return guideline
