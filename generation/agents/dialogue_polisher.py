"""Dialogue Polisher: chatter and transitions; every fact of the polished note spoken."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from generation import rendering
from generation.agents.dialogue_generator import DialogueTurn
from generation.agents.prompting import Message, agent_messages, prompt_version_id
from generation.models import AgentName

AGENT = AgentName.DIALOGUE_POLISHER
VERSION = 1
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 0.5


class DialoguePolisherOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    missing_facts: list[str]
    turns: list[DialogueTurn]


def build_messages(*, polished_note: dict[str, Any], dialogue: dict[str, Any]) -> list[Message]:
    return agent_messages(
        agent=AGENT,
        version=VERSION,
        context={"note": rendering.note_text(polished_note), "dialogue": rendering.dialogue_text(dialogue)},
    )
