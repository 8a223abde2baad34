from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from generation.agents.dialogue_generator import (
    DialogueGeneratorOutput,
    DialogueTurn,
    EmptyDialogue,
    TurnBounds,
    dialogue_content,
    with_turn_bounds,
)
from generation.agents.dialogue_polisher import DialoguePolisherOutput
from generation.agents.limits import OutputLimits, bounded_schema, plain_text_pattern
from generation.agents.note_polisher import NotePolisherOutput
from generation.agents.note_writer import NoteWriterOutput
from generation.agents.scenario_judge import ScenarioJudgeOutput
from generation.agents.scenario_provider import output_schema as scenario_output_schema
from generation.agents.scenario_provider import role_resolve
from generation.examples import examples_for_code, shipped_examples
from generation.llm.schemas import grammar_schema, strict_schema
from generation.models import ArtefactKind, CaseStatus, PhysicianRole, VersionSource
from generation.services.cases import artefact_version_create
from generation.services.pipeline.config import LOCAL_DEMO_LIMITS, pipeline_config
from tests.factories import (
    SAMPLE_DIALOGUE,
    SAMPLE_NOTE,
    SAMPLE_SCENARIO,
    CaseFactory,
    GenerationBatchFactory,
    IcdCodeFactory,
)

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


def six_turns(**first: str) -> list[dict[str, str]]:
    spoken = [{"speaker": speaker, "text": "We talk about your cough."} for speaker in ("doctor", "patient") * 3]
    return [{**spoken[0], **first}, *spoken[1:]]


def test_bounded_schemas_cap_strings_and_lists_for_small_models():
    bounded = bounded_schema(DialogueGeneratorOutput, OutputLimits(max_chars=30, max_items=8))
    schema = bounded.model_json_schema()
    assert schema["properties"]["turns"]["maxItems"] == 8
    assert schema["$defs"]["DialogueTurn"]["properties"]["text"]["maxLength"] == 30
    with pytest.raises(ValidationError):
        bounded.model_validate({"planning": "x", "turns": six_turns(text="a turn far longer than thirty characters")})


def test_the_speaker_is_an_enum_of_the_known_speakers_in_every_wire_schema():
    known = ["doctor", "patient", "nurse", "mother", "father", "parent", "caregiver", "wife", "husband", "son"]
    bounded = bounded_schema(DialogueGeneratorOutput, LOCAL_DEMO_LIMITS)
    for wire in (
        strict_schema(DialogueGeneratorOutput),
        grammar_schema(bounded),
        strict_schema(DialoguePolisherOutput),
    ):
        speaker = wire["properties"]["turns"]["items"]["properties"]["speaker"]
        assert speaker["enum"][: len(known)] == known
        assert "interpreter" in speaker["enum"]
        assert "dr" not in speaker["enum"]  # aliases are folded, not offered


def test_the_turns_have_a_least_count_and_length_in_the_schema_and_the_demo_caps_the_most():
    strict = strict_schema(DialogueGeneratorOutput)["properties"]["turns"]
    # OpenAI strict mode accepts minItems; string lengths go into the description as words.
    assert strict["minItems"] == 6
    assert "minLength" not in strict["items"]["properties"]["text"]
    assert "at least 2 words" in strict["items"]["properties"]["text"]["description"]
    assert "at least 8 characters" in strict["items"]["properties"]["text"]["description"]
    grammar = grammar_schema(bounded_schema(DialogueGeneratorOutput, LOCAL_DEMO_LIMITS))["properties"]["turns"]
    assert (grammar["minItems"], grammar["maxItems"]) == (6, 8)
    text_pattern = re.compile(grammar["items"]["properties"]["text"]["pattern"])
    assert text_pattern.match("I feel fine.")
    assert not text_pattern.match("aaaaaaaaaaaa")  # one word
    assert not text_pattern.match("a b")  # too short
    assert not text_pattern.match("ab " + "c" * 98)  # over the demo's 100 characters


@pytest.mark.parametrize(
    ("max_chars", "min_chars", "min_words", "fitting", "one_word"),
    [
        # The local-model end-to-end test's limits: a minimum of 8 characters once made the
        # two-word pattern "impossible" and the grammar let one long word through.
        (30, 8, 2, ["I feel fine.", "Where does it hurt most?"], "Goodmorning."),
        (9, 8, 3, ["a b cdef", "I m fine"], "abcdefgh"),
        (2000, 8, 2, ["Any fever since Monday?"], "a" * 30),
    ],
)
def test_tight_text_bounds_still_put_the_least_word_count_into_the_grammar(
    max_chars, min_chars, min_words, fitting, one_word
):
    pattern = re.compile(plain_text_pattern(max_chars=max_chars, min_chars=min_chars, min_words=min_words))
    for text in fitting:
        assert pattern.match(text), text
    assert not pattern.match(one_word)
    assert not pattern.match("x" * (max_chars + 1))


@pytest.mark.parametrize("limits", [LOCAL_DEMO_LIMITS, OutputLimits(max_chars=30, max_items=4)])
@pytest.mark.parametrize(
    "schema",
    [
        scenario_output_schema(("demographics", "symptom_description")),
        ScenarioJudgeOutput,
        NoteWriterOutput,
        NotePolisherOutput,
        DialogueGeneratorOutput,
        DialoguePolisherOutput,
    ],
    ids=lambda schema: getattr(schema, "__name__", "schema"),
)
def test_the_local_server_turns_every_bounded_schema_into_a_grammar(schema, limits):
    """llama.cpp's converter refuses what it cannot express (a non-capturing group once);
    the server then runs without a grammar and the small model ignores the schema."""
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    wire = json.dumps(grammar_schema(bounded_schema(schema, limits)))
    assert "root ::=" in llama_grammar.json_schema_to_gbnf(wire)


@pytest.mark.parametrize(
    ("returned", "stored"),
    [
        ("Doctor", "doctor"),
        ("**Patient**", "patient"),
        ("Dr.", "doctor"),
        ("[Nurse]:", "nurse"),
        ("Physician", "doctor"),
    ],
)
def test_a_speaker_in_a_usual_spelling_is_folded_to_its_canonical_tag(returned, stored):
    output = DialogueGeneratorOutput.model_validate({"planning": "x", "turns": six_turns(speaker=returned)})
    assert output.turns[0].speaker == stored


@pytest.mark.parametrize(
    "bad_turn",
    [{"speaker": "1"}, {"speaker": "Speaker A"}, {"text": "a"}, {"text": "Mmmmmmmmmmm"}, {"text": "Hi there"[:5]}],
)
def test_numbered_speakers_and_one_letter_or_one_word_turns_are_refused(bad_turn):
    with pytest.raises(ValidationError):
        DialogueGeneratorOutput.model_validate({"planning": "x", "turns": six_turns(**bad_turn)})


def test_fewer_than_six_turns_are_refused_unless_the_batch_lowers_the_bound():
    four = six_turns()[:4]
    with pytest.raises(ValidationError):
        DialogueGeneratorOutput.model_validate({"planning": "x", "turns": four})
    with pytest.raises(ValidationError):
        DialoguePolisherOutput.model_validate({"missing_facts": [], "turns": four})
    relaxed = with_turn_bounds(DialogueGeneratorOutput, TurnBounds(min_turns=4, min_words=1, min_chars=2))
    assert (
        len(relaxed.model_validate({"planning": "x", "turns": [*four[:3], {"speaker": "patient", "text": "Ok"}]}).turns)
        == 4
    )


def test_a_batch_sets_the_turn_bounds_in_its_config():
    batch = GenerationBatchFactory(config={"turn_bounds": {"min_turns": 10}})
    assert pipeline_config(batch=batch).turn_bounds == TurnBounds(min_turns=10, min_words=2, min_chars=8)


def test_dialogue_turns_get_clean_speaker_tags_and_an_empty_dialogue_is_an_error():
    turns = [
        DialogueTurn(speaker="**Doctor:**", text=" Hello there. "),
        DialogueTurn.model_construct(speaker="x", text=" "),
    ]
    content = dialogue_content(turns)
    assert content == {"turns": [{"speaker": "doctor", "text": "Hello there."}]}
    with pytest.raises(EmptyDialogue):
        dialogue_content([])


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("[Patient]", "patient"), ("doctor: hello", "doctor"), ("Mother:", "mother")],
)
def test_a_speaker_that_runs_into_its_line_keeps_only_its_name(raw, tag):
    assert dialogue_content([DialogueTurn(speaker=raw, text="Hi there.")])["turns"][0]["speaker"] == tag


def test_prompts_carry_text_verbatim_not_html_escaped():
    """A model shown `don&#x27;t` copies it into the note; prompts are plain text."""
    from generation.agents import dialogue_generator

    note = {**SAMPLE_NOTE, "subjective": "Patient says she can't sleep; glucose < 4 at night & sweats."}
    messages = dialogue_generator.build_messages(role="General physician", polished_note=note, examples=[])
    prompt = "\n".join(message["content"] for message in messages)
    assert "can't sleep; glucose < 4 at night & sweats." in prompt
    assert "&#x27;" not in prompt
    assert "&lt;" not in prompt
