from __future__ import annotations

import pytest
from pydantic import ValidationError

from generation.agents.dialogue_generator import DialogueGeneratorOutput, DialogueTurn, EmptyDialogue, dialogue_content
from generation.agents.limits import OutputLimits, bounded_schema
from generation.agents.scenario_provider import role_resolve
from generation.examples import examples_for_code, shipped_examples
from generation.models import ArtefactKind, CaseStatus, PhysicianRole, VersionSource
from generation.services.cases import artefact_version_create
from tests.factories import SAMPLE_DIALOGUE, SAMPLE_NOTE, SAMPLE_SCENARIO, CaseFactory, IcdCodeFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("**Family Medicine Physician**", "Family medicine physician"),
        ("Role: cardiologist", "Cardiologist"),
        ("Pediatrician.", "Pediatrician"),
        ("an endocrinologist (diabetes clinic)", "Endocrinologist"),
        ("Obstetrician gynecologist", "Obstetrician-gynecologist"),
        ("Neurolgist", "Neurologist"),
    ],
)
def test_the_returned_role_is_resolved_to_a_known_role(returned, expected):
    roles = list(PhysicianRole.objects.all())
    assert role_resolve(name=returned, roles=roles).name == expected


def test_an_unrelated_role_is_not_guessed():
    assert role_resolve(name="astronaut", roles=list(PhysicianRole.objects.all())) is None


def test_shipped_examples_are_used_until_the_chapter_has_approved_cases():
    diabetes = IcdCodeFactory(code="E11.65", chapter="4")
    assert [example.code for example in examples_for_code(code=diabetes, limit=1)] == ["E11.9"]
    assert len(shipped_examples()) >= 3

    approved = CaseFactory(code=IcdCodeFactory(code="E10.9", chapter="4"), status=CaseStatus.APPROVED)
    for kind, content in (
        (ArtefactKind.SCENARIO, SAMPLE_SCENARIO),
        (ArtefactKind.NOTE, SAMPLE_NOTE),
        (ArtefactKind.DIALOGUE, SAMPLE_DIALOGUE),
    ):
        artefact_version_create(case=approved, kind=kind, content=content, source=VersionSource.LLM_POLISHED)

    (example,) = examples_for_code(code=diabetes, limit=2)
    assert (example.approved_case_id, example.note) == (approved.pk, SAMPLE_NOTE)


def test_bounded_schemas_cap_strings_and_lists_for_small_models():
    bounded = bounded_schema(DialogueGeneratorOutput, OutputLimits(max_chars=10, max_items=2))
    schema = bounded.model_json_schema()
    assert schema["properties"]["turns"]["maxItems"] == 2
    assert schema["$defs"]["DialogueTurn"]["properties"]["text"]["maxLength"] == 10
    with pytest.raises(ValidationError):
        bounded.model_validate({"planning": "x", "turns": [{"speaker": "doctor", "text": "far too long a turn"}]})


def test_dialogue_turns_get_clean_speaker_tags_and_an_empty_dialogue_is_an_error():
    turns = [DialogueTurn(speaker="**Doctor:**", text=" Hello. "), DialogueTurn(speaker="x", text=" ")]
    content = dialogue_content(turns)
    assert content == {"turns": [{"speaker": "doctor", "text": "Hello."}]}
    with pytest.raises(EmptyDialogue):
        dialogue_content([])


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("[Patient]", "patient"), ("doctor: hello", "doctor"), ("Mother:", "mother"), ("  ", "unknown")],
)
def test_a_speaker_that_runs_into_its_line_keeps_only_its_name(raw, tag):
    assert dialogue_content([DialogueTurn(speaker=raw, text="Hi.")])["turns"][0]["speaker"] == tag


def test_prompts_carry_text_verbatim_not_html_escaped():
    """A model shown `don&#x27;t` copies it into the note; prompts are plain text."""
    from generation.agents import dialogue_generator

    note = {**SAMPLE_NOTE, "subjective": "Patient says she can't sleep; glucose < 4 at night & sweats."}
    messages = dialogue_generator.build_messages(role="General physician", polished_note=note, examples=[])
    prompt = "\n".join(message["content"] for message in messages)
    assert "can't sleep; glucose < 4 at night & sweats." in prompt
    assert "&#x27;" not in prompt
    assert "&lt;" not in prompt
