"""Output schemas on the wire: the response_format of each structured-output mode, the schema
instructions for plain JSON mode, and turning the model's text into a validated pydantic object."""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from generation.models import CallErrorKind, StructuredOutputMode

T = TypeVar("T", bound=BaseModel)

JsonSchema = dict[str, Any]
# Keywords OpenAI's strict mode rejects; they only document the schema, so dropping them loses nothing.
_STRICT_UNSUPPORTED = ("default", "examples")
_FENCED_JSON = re.compile(r"^\s*```(?:json|JSON)?\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)
_MAX_ERRORS_SHOWN = 8


class OutputRejected(Exception):
    """The reply is not a valid instance of the schema; `kind` says whether the JSON or the shape is wrong."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def inlined_schema(schema: type[BaseModel]) -> JsonSchema:
    """The pydantic JSON schema with every $ref replaced by its definition.

    llama.cpp's grammar converter and small models both cope better with one self-contained tree."""
    raw = schema.model_json_schema()
    definitions = raw.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                resolved = copy.deepcopy(definitions[ref.removeprefix("#/$defs/")])
                siblings = {key: value for key, value in node.items() if key != "$ref"}
                return resolve({**resolved, **siblings})
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved_schema: JsonSchema = resolve(raw)
    return resolved_schema


def _length_note(minimum: int | None, maximum: int | None) -> str:
    if minimum and maximum:
        return f"{minimum} to {maximum} characters"
    if maximum:
        return f"at most {maximum} characters"
    return f"at least {minimum} characters" if minimum else ""


def _closed_schema(schema: type[BaseModel], *, lengths_as_words: bool) -> JsonSchema:
    """Every object closed (additionalProperties false) with all its properties required, no
    defaults. Optional pydantic fields already allow null, so requiring them keeps their meaning."""

    def close(node: Any) -> Any:
        if isinstance(node, list):
            return [close(item) for item in node]
        if not isinstance(node, dict):
            return node
        closed = {key: close(value) for key, value in node.items() if key not in _STRICT_UNSUPPORTED}
        if lengths_as_words:
            length_note = _length_note(closed.pop("minLength", None), closed.pop("maxLength", None))
            if length_note:
                described = f"{closed['description']} " if closed.get("description") else ""
                closed["description"] = f"{described}({length_note})"
        if closed.get("type") == "object" and "properties" in closed:
            closed["additionalProperties"] = False
            closed["required"] = list(closed["properties"])
        return closed

    closed_schema: JsonSchema = close(inlined_schema(schema))
    return closed_schema


def strict_schema(schema: type[BaseModel]) -> JsonSchema:
    """For OpenAI strict structured outputs. String length limits become words in the description
    (strict mode does not accept them everywhere); validation after the call still enforces them."""
    return _closed_schema(schema, lengths_as_words=True)


def grammar_schema(schema: type[BaseModel]) -> JsonSchema:
    """For llama.cpp's grammar and for schema instructions: length limits kept as keywords (the
    grammar enforces them, which keeps a small model's strings bounded)."""
    return _closed_schema(schema, lengths_as_words=False)


def _schema_name(schema: type[BaseModel]) -> str:
    """OpenAI accepts a-z, A-Z, 0-9, _ and - in the name, at most 64 characters."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64] or "output"


def response_format_for(*, mode: str, schema: type[BaseModel]) -> dict[str, Any]:
    """The response_format of `mode` for `schema`: built once per pair (the schemas are
    classes made once), and shared, so never changed in place."""
    return _response_format(mode, schema)


@lru_cache(maxsize=256)
def _response_format(mode: str, schema: type[BaseModel]) -> dict[str, Any]:
    if mode == StructuredOutputMode.JSON_SCHEMA:
        return {
            "type": "json_schema",
            "json_schema": {"name": _schema_name(schema), "schema": strict_schema(schema), "strict": True},
        }
    if mode == StructuredOutputMode.JSON_OBJECT_SCHEMA:
        return {"type": "json_object", "schema": grammar_schema(schema)}
    return {"type": "json_object"}


@lru_cache(maxsize=256)
def schema_instructions(schema: type[BaseModel]) -> str:
    return (
        "Reply with one JSON object only, no prose and no code fences. "
        "It must validate against this JSON schema:\n" + json.dumps(grammar_schema(schema), separators=(",", ":"))
    )


def messages_with_schema(*, mode: str, messages: list[dict[str, str]], schema: type[BaseModel]) -> list[dict[str, str]]:
    """The messages to send. Without a server-enforced schema the model must be told the shape.

    The instructions join the FIRST system message: the prompt prefix stays stable (so provider-side
    prompt caching applies) and chat templates that allow only a leading system turn (Gemma) accept it."""
    if mode == StructuredOutputMode.JSON_SCHEMA:
        return [dict(message) for message in messages]
    instructions = schema_instructions(schema)
    sent = [dict(message) for message in messages]
    if sent and sent[0].get("role") == "system":
        sent[0]["content"] = f"{sent[0]['content']}\n\n{instructions}"
    else:
        sent.insert(0, {"role": "system", "content": instructions})
    return sent


def _without_fence(text: str) -> str:
    match = _FENCED_JSON.match(text)
    return match.group("body") if match else text


def _validation_summary(error: ValidationError) -> str:
    lines = []
    for detail in error.errors()[:_MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in detail["loc"]) or "(root)"
        lines.append(f"{where}: {detail['msg']}")
    hidden = error.error_count() - len(lines)
    if hidden > 0:
        lines.append(f"... and {hidden} more")
    return "; ".join(lines)


def parse_output(text: str | None, schema: type[T]) -> T:
    """The validated object, or OutputRejected saying what is wrong (in words the model can act on)."""
    if not text or not text.strip():
        raise OutputRejected("The reply was empty.", kind=CallErrorKind.MALFORMED_JSON)
    try:
        # strict=False accepts raw newlines/tabs inside strings, which llama.cpp's JSON grammar lets through.
        data = json.loads(_without_fence(text), strict=False)
    except json.JSONDecodeError as error:
        raise OutputRejected(f"The reply is not valid JSON: {error}.", kind=CallErrorKind.MALFORMED_JSON) from error
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise OutputRejected(
            f"The JSON does not match the schema: {_validation_summary(error)}.", kind=CallErrorKind.SCHEMA_INVALID
        ) from error


def repair_messages(*, conversation: list[dict[str, str]], bad_reply: str | None, problem: str) -> list[dict[str, str]]:
    return [
        *conversation,
        {"role": "assistant", "content": bad_reply or ""},
        {
            "role": "user",
            "content": f"{problem} Reply again with the corrected JSON object only, keeping everything else the same.",
        },
    ]
