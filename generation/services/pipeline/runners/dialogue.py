"""The dialogue stage: the generator writes the conversation from the polished note, the
polisher adds what the note has and the dialogue misses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from generation.agents import dialogue_generator, dialogue_polisher
from generation.checks import coverage_misses
from generation.models import ArtefactKind
from generation.services.pipeline.runners.context import (
    AgentOutput,
    StepContext,
    agent_call,
    previous_version,
    required_version,
    step_complete,
    worked_examples,
)


def _bounded(context: StepContext, output: type[BaseModel]) -> type[BaseModel]:
    return dialogue_generator.with_turn_bounds(output, context.config.turn_bounds)


def run_dialogue_generator(context: StepContext) -> None:
    step, case = context.step, context.case
    # The latest note is the polished one (or a clinician's edit of it): the dialogue
    # must speak the facts of the note that is released with it.
    note = required_version(context, ArtefactKind.NOTE)
    previous = previous_version(context, ArtefactKind.DIALOGUE)
    examples = worked_examples(context)
    messages = dialogue_generator.build_messages(
        role=case.role.name if case.role else "",
        polished_note=note.content,
        examples=examples,
        previous=previous.content if previous else None,
        feedback=step.feedback,
    )
    result = agent_call(
        context,
        messages=messages,
        schema=_bounded(context, dialogue_generator.DialogueGeneratorOutput),
        examples=examples,
    )
    output: Any = result.output
    step_complete(
        context,
        result={"planning": output.planning, "note_version_id": note.pk},
        output=AgentOutput(
            kind=ArtefactKind.DIALOGUE,
            content=dialogue_generator.dialogue_content(output.turns),
            source=context.raw_source,
            call=result.call,
            parent=previous,
        ),
    )


def run_dialogue_polisher(context: StepContext) -> None:
    """The polisher is told what the coverage check finds unsaid in the generator's dialogue
    and gets one chance to add it: what it still misses, the stored checks flag."""
    note = required_version(context, ArtefactKind.NOTE)
    raw_dialogue = required_version(context, ArtefactKind.DIALOGUE)
    misses = coverage_misses(note_text=note.text, dialogue_text=raw_dialogue.text)
    messages = dialogue_polisher.build_messages(
        polished_note=note.content, dialogue=raw_dialogue.content, coverage_misses=misses
    )
    result = agent_call(context, messages=messages, schema=_bounded(context, dialogue_polisher.DialoguePolisherOutput))
    output: Any = result.output
    step_complete(
        context,
        result={
            "missing_facts": output.missing_facts,
            "coverage_misses": misses,
            "note_version_id": note.pk,
            "input_version_id": raw_dialogue.pk,
        },
        output=AgentOutput(
            kind=ArtefactKind.DIALOGUE,
            content=dialogue_generator.dialogue_content(output.turns),
            source=context.polished_source,
            call=result.call,
            parent=raw_dialogue,
        ),
    )
