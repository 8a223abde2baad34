"""Template helpers of the review screens."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import markdown  # type: ignore[import-untyped]
import nh3
from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# An absolute path on this site: never "//host/..." or "/\host/...", which browsers read as another host.
_PATH_ON_THIS_SITE = re.compile(r"/[\w.~-]")
# Nothing that loads from elsewhere (nh3 allows none of these by default; kept out on purpose).
_EMBEDDING_TAGS = {"iframe", "frame", "object", "embed", "video", "audio", "source", "picture", "link", "style"}


def _images_from_this_site_only(element: str, attribute: str, value: str) -> str | None:
    # A remote image would tell its server who opened the guideline, and when.
    if element == "img" and attribute == "src" and not _PATH_ON_THIS_SITE.match(value):
        return None
    return value


@register.filter
def markdown_sanitised(text: str) -> SafeString:
    """Guideline markdown -> HTML that nh3 has stripped of scripts, handlers, styles and
    anything loaded from another site (images, frames, objects); links open with
    rel="noopener noreferrer". Never used on LLM text, which is always shown escaped."""
    return mark_safe(_sanitised_html(text or ""))  # noqa: S308 - sanitised by nh3


@lru_cache(maxsize=64)
def _sanitised_html(text: str) -> str:
    """The same guidelines beside every item: each is converted once per process, not per page."""
    html = markdown.markdown(text, extensions=["sane_lists"], output_format="html")
    return nh3.clean(
        html,
        tags=nh3.ALLOWED_TAGS - _EMBEDDING_TAGS,
        attribute_filter=_images_from_this_site_only,
        link_rel="noopener noreferrer",
    )


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    try:
        return mapping.get(key) if mapping is not None else None
    except AttributeError:
        return None


# Stands for a number while a URL's shape is reversed: no id or index of ours comes near it.
_NUMBER_MARK = 2_000_000_000


@lru_cache(maxsize=128)
def _url_shape(name: str, words: tuple[str | None, ...]) -> str:
    """The URL `name` reverses to, with "{0}", "{1}"... where its numbers go (None in `words`:
    a number; else that word, checked by reverse() like any argument)."""
    marks = [_NUMBER_MARK + position if word is None else word for position, word in enumerate(words)]
    shape = reverse(name, args=marks).replace("{", "{{").replace("}", "}}")
    for position, word in enumerate(words):
        if word is None:
            shape = shape.replace(str(_NUMBER_MARK + position), f"{{{position}}}", 1)
    return shape


@register.simple_tag
def row_url(name: str, *args: int | str) -> str:
    """{% url %} for the rows of a long list (queue rows, dialogue turns): the same URL, but
    reverse() runs once per URL shape instead of once per row (it checks every URL it builds
    against its pattern, which a page of rows pays a hundred times over)."""
    if any(isinstance(arg, bool) or (isinstance(arg, int) and arg < 0) for arg in args):
        return reverse(name, args=args)  # not a plain id or index: reverse() refuses or builds it
    words = tuple(None if isinstance(arg, int) else str(arg) for arg in args)
    return _url_shape(name, words).format(*args)
