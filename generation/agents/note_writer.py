"""Note Writer: a SOAP note from the approved scenario and role."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from generation import rendering
from generation.agents.prompting import (
    Message,
    agent_messages,
    as_json,
    prompt_version_id,
)
from generation.examples import WorkedExample
from generation.models import NOTE_FIELDS, SUBJECTIVE_PARTS, AgentName, IcdCode, SurveySnapshot
from generation.selectors import RankedVariable

AGENT = AgentName.NOTE_WRITER
VERSION = 1
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 0.9


def note_schema(name: str, *, lead_field: str) -> type[BaseModel]:
    """A note schema whose first field is the agent's reasoning (`lead_field`), so the
    model thinks before it writes; then every section of NOTE_FIELDS."""
    fields: dict[str, Any] = {lead_field: (str, ...)}
    fields.update(dict.fromkeys(NOTE_FIELDS, (str, ...)))
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


NoteWriterOutput = note_schema("NoteWriterOutput", lead_field="planning")


def note_content(output: BaseModel) -> dict[str, str]:
    """Only the note sections (never the planning); empty optional parts are left out."""
    values = {key: str(getattr(output, key, "") or "").strip() for key in NOTE_FIELDS}
    optional = {key for key, _ in SUBJECTIVE_PARTS}
    return {key: value for key, value in values.items() if value or key not in optional}


def _example_pair(example: WorkedExample) -> tuple[str, str]:
    role = example.scenario.get("role", "")
    given = f"Physician role: {role}\nScenario:\n{rendering.scenario_text(example.scenario)}"
    return given, as_json(example.note)


def build_messages(
    *,
    code: IcdCode,
    role: str,
    scenario: dict[str, Any],
    variables: list[RankedVariable],
    survey: SurveySnapshot | None,
    examples: list[WorkedExample],
    variable_names: Mapping[str, str],
    previous: dict[str, Any] | None = None,
    feedback: str = "",
) -> list[Message]:
    return agent_messages(
        agent=AGENT,
        version=VERSION,
        examples=[_example_pair(example) for example in examples],
        context={
            "code": code,
            "role": role,
            "variables": variables,
            "survey": survey,
            "scenario": rendering.scenario_text(scenario, variable_names=variable_names),
            "previous": rendering.note_text(previous) if previous else "",
            "feedback": feedback,
        },
    )
