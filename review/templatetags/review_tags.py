"""Template helpers of the review screens."""

from __future__ import annotations

from typing import Any

import markdown  # type: ignore[import-untyped]
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def markdown_sanitised(text: str) -> SafeString:
    """Guideline markdown -> HTML that nh3 has stripped of scripts, handlers and styles.
    Never used on LLM text, which is always shown escaped."""
    html = markdown.markdown(text or "", extensions=["sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html))  # noqa: S308 - sanitised by nh3 just above


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    try:
        return mapping.get(key) if mapping is not None else None
    except AttributeError:
        return None
