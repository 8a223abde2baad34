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
    flags = _dialogue_flags(QUIET_TURNS)
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


@pytest.mark.django_db
def test_artefact_version_create_records_flags_and_sets_the_case_badge():
    case = CaseFactory()
    artefact_version_create(case=case, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.LLM_RAW)
    dialogue = artefact_version_create(
        case=case, kind=ArtefactKind.DIALOGUE, content=SAMPLE_DIALOGUE, source=VersionSource.LLM_RAW
    )
    assert "coverage_unspoken" in _codes(dialogue.check_flags)  # BP 138/86 is only in the note
    assert Case.objects.get(pk=case.pk).has_check_flags is True

    spoken = {"turns": [{"speaker": s, "text": t} for s, t in QUIET_TURNS]}
    quiet_note = {
        "subjective": "Thirsty for weeks.",
        "objective": "Looks well today.",
        "assessment": "Probable diabetes.",
        "plan": "Check fasting glucose.",
    }
    artefact_version_create(case=case, kind=ArtefactKind.NOTE, content=quiet_note, source=VersionSource.LLM_RAW)
    artefact_version_create(case=case, kind=ArtefactKind.DIALOGUE, content=spoken, source=VersionSource.LLM_RAW)
    assert Case.objects.get(pk=case.pk).has_check_flags is False


QUIET_TURNS = [
    ("doctor", "Good morning, what brings you in?"),
    ("patient", "I have been so thirsty for weeks now."),
    ("doctor", "You look well today, which is good."),
    ("patient", "I feel fine apart from the thirst."),
    ("doctor", "This is probably diabetes, so we will check a fasting glucose."),
    ("patient", "All right, thank you for explaining."),
]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("DOB:   03/14/1961.", "DOB:   03/14/1961"),
        ("born on March 3, 1961 at home", "born on March 3, 1961"),
        ("MRN #  A1234567 noted", "MRN #  A1234567"),
        ("Contact jane.doe+clinic@mail.example.org.", "jane.doe+clinic@mail.example.org"),
    ],
)
def test_phi_like_strings_are_found_whole(text, found):
    phi = [flag for flag in _note_flags({**SAMPLE_NOTE, "subjective": text}) if flag["code"] == "phi_like"]
    assert [found] in [list(flag["detail"].values())[0] for flag in phi]


def test_speaker_tags_of_a_dialogue_without_turns_are_not_placeholders():
    text = "[doctor]: How are you?\n\n  [patient]:  Fine.\n[doctor] Any [name] here?"
    flags = version_check_flags(kind="dialogue", content={}, text=text)
    assert [flag["detail"] for flag in flags if flag["code"] == "placeholder"] == [["[name]"]]
