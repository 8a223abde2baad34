"""Dialogue Generator: the conversation behind the POLISHED note."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model

from generation import rendering
from generation.agents.limits import MinWords
from generation.agents.prompting import (
    Message,
    agent_messages,
    as_json,
    prompt_version_id,
)
from generation.examples import WorkedExample
from generation.models import CANONICAL_SPEAKERS, AgentName, speaker_name

AGENT = AgentName.DIALOGUE_GENERATOR
VERSION = 1
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 0.7


@dataclass(frozen=True)
class TurnBounds:
    """The least a generated conversation must have; a batch may raise or lower them
    (config "turn_bounds"). The local demo limits cap the maximum."""

    min_turns: int = 6
    min_words: int = 2
    min_chars: int = 8


DEFAULT_TURN_BOUNDS = TurnBounds()


def canonical_speaker(raw: object) -> object:
    """Before validation, for providers in plain JSON mode: "Doctor", "**Patient:**", "Dr."
    become their canonical tag; anything else is left for the enum to refuse."""
    return speaker_name(speaker_tag(raw).rstrip(".")) if isinstance(raw, str) else raw


def _known_speaker(speaker: str) -> str:
    if speaker not in CANONICAL_SPEAKERS:
        raise ValueError(f"the speaker must be one of: {', '.join(CANONICAL_SPEAKERS)}")
    return speaker


# An enum in the JSON schema: llama.cpp's grammar and OpenAI's strict mode allow only these.
Speaker = Annotated[
    str,
    BeforeValidator(canonical_speaker),
    AfterValidator(_known_speaker),
    WithJsonSchema({"type": "string", "enum": list(CANONICAL_SPEAKERS)}),
]


def spoken_text(bounds: TurnBounds) -> Any:
    """A turn's text: at least `min_chars` characters and `min_words` words (a turn of one
    letter is not a conversation)."""
    return Annotated[
        str,
        Field(min_length=bounds.min_chars, description=f"What is said: at least {bounds.min_words} words."),
        MinWords(bounds.min_words),
    ]


class DialogueTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speaker: Speaker
    text: spoken_text(DEFAULT_TURN_BOUNDS)  # type: ignore[valid-type]


def turns_field(bounds: TurnBounds, turn: type[DialogueTurn] = DialogueTurn) -> Any:
    return Annotated[list[turn], Field(min_length=bounds.min_turns)]  # type: ignore[valid-type]


class DialogueGeneratorOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    planning: str
    turns: turns_field(DEFAULT_TURN_BOUNDS)  # type: ignore[valid-type]


@lru_cache(maxsize=32)
def with_turn_bounds(output: type[BaseModel], bounds: TurnBounds) -> type[BaseModel]:
    """`output` (the generator's or the polisher's schema) with other turn bounds."""
    if bounds == DEFAULT_TURN_BOUNDS:
        return output
    turn = create_model("DialogueTurn", __base__=DialogueTurn, text=(spoken_text(bounds), ...))
    return create_model(output.__name__, __base__=output, turns=(turns_field(bounds, turn), ...))


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
