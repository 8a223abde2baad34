"""How output schemas are put on the wire for each structured-output mode."""

from __future__ import annotations

from pydantic import BaseModel, Field

from generation.llm.schemas import grammar_schema, parse_output, response_format_for, strict_schema
from generation.models import StructuredOutputMode


class Turn(BaseModel):
    speaker: str
    text: str = Field(max_length=400)


class Dialogue(BaseModel):
    turns: list[Turn]
    summary: str | None = None


def test_strict_schema_inlines_nested_models_and_closes_every_object():
    schema = strict_schema(Dialogue)

    assert "$defs" not in schema
    turn = schema["properties"]["turns"]["items"]
    assert turn["additionalProperties"] is False
    assert turn["required"] == ["speaker", "text"]
    assert schema["required"] == ["turns", "summary"]
    assert "default" not in schema["properties"]["summary"]
    assert {"type": "null"} in schema["properties"]["summary"]["anyOf"]


def test_strict_schema_states_length_limits_in_words():
    text = strict_schema(Dialogue)["properties"]["turns"]["items"]["properties"]["text"]

    assert "maxLength" not in text
    assert "at most 400 characters" in text["description"]


def test_the_llama_cpp_grammar_schema_keeps_length_limits():
    text = grammar_schema(Dialogue)["properties"]["turns"]["items"]["properties"]["text"]

    assert text["maxLength"] == 400


def test_the_json_schema_name_only_uses_characters_openai_accepts():
    odd = type("Scenario[bounded]", (BaseModel,), {"__annotations__": {"x": int}})

    response_format = response_format_for(mode=StructuredOutputMode.JSON_SCHEMA, schema=odd)

    assert response_format["json_schema"]["name"] == "Scenario_bounded_"


def test_a_raw_newline_inside_a_string_is_accepted():
    """llama.cpp's JSON grammar lets control characters into strings; the text is still usable."""

    class Note(BaseModel):
        plan: str

    assert parse_output('{"plan": "Start metformin.\nRecheck in 3 months."}', Note).plan == (
        "Start metformin.\nRecheck in 3 months."
    )
