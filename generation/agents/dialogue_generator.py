"""Dialogue Generator: the conversation behind the POLISHED note."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from generation import rendering
from generation.agents.prompting import (
    Message,
    agent_messages,
    as_json,
    prompt_version_id,
)
from generation.examples import WorkedExample
from generation.models import AgentName

AGENT = AgentName.DIALOGUE_GENERATOR
VERSION = 1
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 0.7


class DialogueTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speaker: str
    text: str


class DialogueGeneratorOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    planning: str
    turns: list[DialogueTurn]


class EmptyDialogue(ValueError):
    """The model returned no usable turn."""


def speaker_tag(raw: str) -> str:
    """'**Doctor:**' -> 'doctor'; a speaker that runs into its line ('doctor: hello') keeps
    only the name before the colon."""
    name = raw.strip(" []*").split(":", 1)[0]
    return " ".join(name.strip(" []*").lower().split()) or "unknown"


def dialogue_content(turns: list[DialogueTurn]) -> dict[str, Any]:
    """Turns with a lower-case speaker tag; empty turns dropped. Planning never goes in."""
    cleaned = [{"speaker": speaker_tag(turn.speaker), "text": turn.text.strip()} for turn in turns if turn.text.strip()]
    if not cleaned:
        raise EmptyDialogue("the model returned a dialogue without any spoken turn")
    return {"turns": cleaned}


def _example_pair(example: WorkedExample) -> tuple[str, str]:
    return f"The final SOAP note:\n{rendering.note_text(example.note)}", as_json(example.dialogue)


def build_messages(
    *,
    role: str,
    polished_note: dict[str, Any],
    examples: list[WorkedExample],
    previous: dict[str, Any] | None = None,
    feedback: str = "",
) -> list[Message]:
    return agent_messages(
        agent=AGENT,
        version=VERSION,
        examples=[_example_pair(example) for example in examples],
        context={
            "role": role,
            "note": rendering.note_text(polished_note),
            "previous": rendering.dialogue_text(previous) if previous else "",
            "feedback": feedback,
        },
    )
