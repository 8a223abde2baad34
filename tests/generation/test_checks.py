from __future__ import annotations

import pytest

from generation import rendering
from generation.checks import version_check_flags
from generation.models import ArtefactKind, Case, VersionSource
from generation.services.cases import artefact_version_create
from tests.factories import SAMPLE_DIALOGUE, SAMPLE_NOTE, CaseFactory


def _codes(flags: list[dict]) -> list[str]:
    return [flag["code"] for flag in flags]


def _note_flags(content: dict) -> list[dict]:
    return version_check_flags(kind="note", content=content, text=rendering.note_text(content))


def _dialogue_flags(turns: list[tuple[str, str]], note: dict | None = None) -> list[dict]:
    content = {"turns": [{"speaker": speaker, "text": text} for speaker, text in turns]}
    return version_check_flags(
        kind="dialogue", content=content, text=rendering.dialogue_text(content), note_content=note
    )


def test_a_complete_note_without_placeholders_has_no_flags():
    assert _note_flags(SAMPLE_NOTE) == []


def test_it_names_the_empty_soap_sections():
    flags = _note_flags({**SAMPLE_NOTE, "objective": "  ", "plan": ""})
    assert _codes(flags) == ["missing_section"]
    assert flags[0]["detail"] == ["Objective", "Plan"]


@pytest.mark.parametrize("placeholder", ["[Patient's Name]", "<name>", "XX", "[Date of visit]", "{{clinic}}"])
def test_it_flags_placeholders(placeholder):
    flags = _note_flags({**SAMPLE_NOTE, "subjective": f"Mr. {placeholder} reports thirst."})
    assert _codes(flags) == ["placeholder"]
    assert placeholder in flags[0]["detail"]


def test_dialogue_speaker_tags_are_not_placeholders():
    flags = _dialogue_flags([("doctor", "How are you?"), ("patient", "Fine, thanks.")])
    assert flags == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Call me on (555) 123-4567.", "phone"),
        ("Reach me at jane.doe@example.org please.", "email"),
        ("SSN 123-45-6789 on file.", "ssn"),
        ("MRN: 00482913 was checked.", "mrn"),
        ("She lives at 42 Maple Street near the park.", "street_address"),
        ("DOB: 03/14/1961.", "date_of_birth"),
    ],
)
def test_it_flags_phi_like_strings(text, kind):
    flags = _note_flags({**SAMPLE_NOTE, "subjective": text})
    phi = [flag for flag in flags if flag["code"] == "phi_like"]
    assert phi
    assert kind in phi[0]["detail"]


def test_it_lists_note_facts_the_dialogue_never_says():
    note = {**SAMPLE_NOTE, "objective": "BP 138/86. TSH normal.", "plan": "Start lisinopril 10 mg daily."}
    flags = _dialogue_flags([("doctor", "Your blood pressure was 138 over 86."), ("patient", "Okay.")], note)
    assert _codes(flags) == ["unspoken_fact"]
    detail = flags[0]["detail"]
    assert "10" in detail["numbers"]
    assert "138" not in detail["numbers"]
    assert "lisinopril" in detail["terms"]
    assert "TSH" in detail["terms"]


def test_spoken_number_words_count_as_said():
    note = {**SAMPLE_NOTE, "subjective": "Thirst for 3 months.", "objective": "", "assessment": "", "plan": ""}
    flags = _dialogue_flags([("patient", "It has been three months now.")], note)
    assert flags == []


@pytest.mark.django_db
def test_artefact_version_create_records_flags_and_sets_the_case_badge():
    case = CaseFactory()
    artefact_version_create(case=case, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.LLM_RAW)
    dialogue = artefact_version_create(
        case=case, kind=ArtefactKind.DIALOGUE, content=SAMPLE_DIALOGUE, source=VersionSource.LLM_RAW
    )
    assert "unspoken_fact" in _codes(dialogue.check_flags)  # BP 138/86 is only in the note
    assert Case.objects.get(pk=case.pk).has_check_flags is True

    spoken = {"turns": [{"speaker": "doctor", "text": "Fine."}]}
    quiet_note = {"subjective": "Thirsty.", "objective": "Well.", "assessment": "Diabetes.", "plan": "Diet."}
    artefact_version_create(case=case, kind=ArtefactKind.NOTE, content=quiet_note, source=VersionSource.LLM_RAW)
    artefact_version_create(case=case, kind=ArtefactKind.DIALOGUE, content=spoken, source=VersionSource.LLM_RAW)
    assert Case.objects.get(pk=case.pk).has_check_flags is False
