"""Bounded output schemas for small local models.

A 270M-parameter model rambles; with the llama.cpp server the JSON schema becomes a
grammar, so maxLength / maxItems make it stop in time instead of being cut off by
max_tokens (which would fail the step as truncated)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, Field, create_model


@dataclass(frozen=True)
class OutputLimits:
    max_chars: int
    max_items: int
    # Lists of objects (dialogue turns) need at least this many: a small model under a
    # grammar happily returns an empty list.
    min_object_items: int = 2


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


# llama.cpp's JSON grammar lets raw control characters (a newline) into strings, which
# strict JSON parsers refuse. Printable ASCII without quote or backslash is always valid
# JSON text; the grammar follows the pattern (not maxLength), so it carries the bound.
PLAIN_TEXT = "^[ -!#-\\[\\]-~]{0,%d}$"


def _bounded_annotation(annotation: Any, limits: OutputLimits) -> Any:
    if annotation is str:
        return Annotated[str, Field(max_length=limits.max_chars, pattern=PLAIN_TEXT % limits.max_chars)]
    if _is_model(annotation):
        return bounded_schema(annotation, limits)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        minimum = limits.min_object_items if _is_model(item) else 0
        return Annotated[
            list[_bounded_annotation(item, limits)],  # type: ignore[misc]
            Field(min_length=minimum, max_length=limits.max_items),
        ]
    return annotation


@lru_cache(maxsize=64)
def bounded_schema(model: type[BaseModel], limits: OutputLimits) -> type[BaseModel]:
    """The same schema (names, fields, order) with every string and list capped."""
    fields = {name: (_bounded_annotation(info.annotation, limits), ...) for name, info in model.model_fields.items()}
    return create_model(  # type: ignore[call-overload,no-any-return]
        model.__name__, __config__=model.model_config, **fields
    )
