"""Bounded output schemas for small local models.

A 270M-parameter model rambles; with the llama.cpp server the JSON schema becomes a
grammar, so maxLength / maxItems make it stop in time instead of being cut off by
max_tokens (which would fail the step as truncated)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, get_args, get_origin

from annotated_types import MaxLen, MinLen
from pydantic import BaseModel, Field, GetCoreSchemaHandler, WithJsonSchema, create_model
from pydantic.fields import FieldInfo
from pydantic_core import core_schema


@dataclass(frozen=True)
class OutputLimits:
    max_chars: int
    max_items: int
    # Lists of objects (dialogue turns) need at least this many: a small model under a
    # grammar happily returns an empty list.
    min_object_items: int = 2


@dataclass(frozen=True)
class MinWords:
    """A string field's least number of words (annotation metadata). Validated after the call;
    a bounded schema also writes it into the grammar's pattern."""

    count: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, text: str) -> str:
        if len(text.split()) < self.count:
            raise ValueError(f"needs at least {self.count} words")
        return text


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


# llama.cpp's JSON grammar lets raw control characters (a newline) into strings, which
# strict JSON parsers refuse. Printable ASCII without quote or backslash is always valid
# JSON text; the grammar follows the pattern (not maxLength), so it carries the bounds.
_CHAR = "[ -!#-\\[\\]-~]"
_NON_SPACE = "[!#-\\[\\]-~]"
PLAIN_TEXT = f"^{_CHAR}{{0,%d}}$"
_LONGEST_WORD = 24


def plain_text_pattern(*, max_chars: int, min_chars: int = 0, min_words: int = 1) -> str:
    """Printable text of min_chars..max_chars characters; with min_words > 1, that many words.

    The words before the last are each capped (at most _LONGEST_WORD characters, and at most
    half the room left once the minimum is met) so the total stays within max_chars while the
    last part keeps room to say something. Only when even one-letter words cannot fit does
    the pattern fall back to the character bounds alone (validation still counts words)."""
    leading = min_words - 1
    rest_min = max(0, min_chars - 2 * leading - 1)
    room = max_chars - 1 - rest_min  # for the leading words, their spaces and the tail's extra
    word_max = min(_LONGEST_WORD, room // leading - 1, max(1, room // (2 * leading) - 1)) if leading > 0 else 0
    if leading <= 0 or word_max < 1:
        return f"^{_CHAR}{{{min_chars},{max_chars}}}$"
    rest_max = max_chars - leading * (word_max + 1) - 1
    word = f"{_NON_SPACE}{{1,{word_max}}} "
    # A plain group: llama.cpp's schema-to-grammar converter refuses "(?:".
    return f"^({word}){{{leading}}}{_NON_SPACE}{_CHAR}{{{rest_min},{rest_max}}}$"


def _metadata_of(metadata: list[Any], kind: type) -> Any:
    return next((item for item in metadata if isinstance(item, kind)), None)


def _bounded_string(metadata: list[Any], limits: OutputLimits) -> Any:
    if _metadata_of(metadata, WithJsonSchema):
        return Annotated[str, *metadata]  # a closed vocabulary (an enum) needs no bound
    min_chars = getattr(_metadata_of(metadata, MinLen), "min_length", 0)
    min_words = getattr(_metadata_of(metadata, MinWords), "count", 1)
    pattern = plain_text_pattern(max_chars=limits.max_chars, min_chars=min_chars, min_words=min_words)
    return Annotated[str, Field(max_length=limits.max_chars, pattern=pattern), *metadata]


def _bounded_annotation(annotation: Any, limits: OutputLimits, metadata: list[Any] | None = None) -> Any:
    metadata = metadata or []
    if annotation is str:
        return _bounded_string(metadata, limits)
    if _is_model(annotation):
        return bounded_schema(annotation, limits)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        declared = getattr(_metadata_of(metadata, MinLen), "min_length", 0)
        minimum = max(declared, limits.min_object_items if _is_model(item) else 0)
        others = [entry for entry in metadata if not isinstance(entry, MinLen | MaxLen)]
        return Annotated[
            list[_bounded_annotation(item, limits)],  # type: ignore[misc]
            Field(min_length=minimum, max_length=max(minimum, limits.max_items)),
            *others,
        ]
    return annotation


def _bounded_field(info: FieldInfo, limits: OutputLimits) -> tuple[Any, Any]:
    return _bounded_annotation(info.annotation, limits, list(info.metadata)), Field(description=info.description)


@lru_cache(maxsize=64)
def bounded_schema(model: type[BaseModel], limits: OutputLimits) -> type[BaseModel]:
    """The same schema (names, fields, order, validators) with every free string and list capped."""
    fields = {name: _bounded_field(info, limits) for name, info in model.model_fields.items()}
    return create_model(  # type: ignore[call-overload,no-any-return]
        model.__name__, __config__=model.model_config, **fields
    )
