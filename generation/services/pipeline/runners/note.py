"""The note stage: the writer drafts the SOAP note from the scenario, the polisher
corrects it."""

from __future__ import annotations

from typing import Any

from generation.agents import note_polisher, note_writer
from generation.models import ArtefactKind
from generation.services.pipeline.reference import variable_names, variables_ranked
from generation.services.pipeline.runners.context import (
    AgentOutput,
    StepContext,
    agent_call,
    previous_version,
    required_version,
    step_complete,
    worked_examples,
)


def run_note_writer(context: StepContext) -> None:
    step, case = context.step, context.case
    scenario = required_version(context, ArtefactKind.SCENARIO)
    previous = previous_version(context, ArtefactKind.NOTE)
    examples = worked_examples(context)
    messages = note_writer.build_messages(
        code=case.assigned_code(),
        role=case.role.name if case.role else str(scenario.content.get("role", "")),
        scenario=scenario.content,
        variables=variables_ranked(snapshot=case.survey_snapshot),
        survey=case.survey_snapshot,
        examples=examples,
        variable_names=variable_names(),
        previous=previous.content if previous else None,
        feedback=step.feedback,
    )
    result = agent_call(context, messages=messages, schema=note_writer.NoteWriterOutput, examples=examples)
    output: Any = result.output
    step_complete(
        context,
        result={"planning": output.planning, "scenario_version_id": scenario.pk},
        output=AgentOutput(
            kind=ArtefactKind.NOTE,
            content=note_writer.note_content(output),
            source=context.raw_source,
            call=result.call,
            parent=previous,
        ),
    )


def run_note_polisher(context: StepContext) -> None:
    raw_note = required_version(context, ArtefactKind.NOTE)
    messages = note_polisher.build_messages(note=raw_note.content)
    result = agent_call(context, messages=messages, schema=note_polisher.NotePolisherOutput)
    output: Any = result.output
    step_complete(
        context,
        result={"changes": output.changes, "input_version_id": raw_note.pk},
        output=AgentOutput(
            kind=ArtefactKind.NOTE,
            content=note_writer.note_content(output),
            source=context.polished_source,
            call=result.call,
            parent=raw_note,
        ),
    )
