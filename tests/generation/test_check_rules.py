"""Each automatic check on crafted positive and negative examples, including the heading and
speaker-tag styles found in real data (PRODUCT.md: `**1. Subjective:**`, `### Medical Note`,
`[doctor]:`, `**Doctor:**`; ACI-Bench: `ASSESSMENT AND PLAN`, `CHIEF COMPLAINT`)."""

from __future__ import annotations

import pytest

from generation.checks import CheckSubject, CodeFacts, run_checks
from generation.models import note_field_texts

DIALOGUE_OK = "\n".join(
    [
        "[doctor]: Good morning Mrs. Lane, what brings you in today?",
        "[patient]: My blood pressure has been high at home, and I get headaches.",
        "[doctor]: Your blood pressure today is one hundred forty-eight over ninety.",
        "[patient]: That sounds high to me, doctor.",
        "[doctor]: It is. We will start lisinopril ten milligrams once a day.",
        "[patient]: Okay, and when should I come back?",
        "[doctor]: Come back in two weeks and we will recheck it.",
        "[patient]: Thank you, I will see you then.",
    ]
)
NOTE_OK = """SUBJECTIVE:
Mrs. Lane is a 54-year-old female with high blood pressure readings at home and headaches.

OBJECTIVE:
Blood pressure 148/90.

ASSESSMENT:
Hypertension.

PLAN:
Start lisinopril 10 mg by mouth daily. Follow up in 2 weeks."""


def _findings(kind: str, check_code: str, /, *, note: str = NOTE_OK, dialogue: str = DIALOGUE_OK, **extra) -> list:
    subject = CheckSubject(kind=kind, note_text=note, dialogue_text=dialogue, **extra)
    (result,) = run_checks(subject, (check_code,))
    return result.findings


def _texts(kind: str, check_code: str, /, **kwargs) -> list[str]:
    text = kwargs.get(kind, NOTE_OK if kind == "note" else DIALOGUE_OK)
    return [text[start:end] for finding in _findings(kind, check_code, **kwargs) for start, end in finding.spans]


# --- headings -------------------------------------------------------------------------------
ACI_NOTE = """CHIEF COMPLAINT

Annual exam.

HISTORY OF PRESENT ILLNESS

Ms. Lane reports headaches.

PHYSICAL EXAM

Heart regular.

RESULTS

Lipid panel normal.

ASSESSMENT AND PLAN

Hypertension. Start lisinopril 10 mg daily."""
MEDSYNTH_NOTE = """### Medical Note

**1. Subjective:**
Headaches for a month.

**2. Objective:**
BP 148/90.

**3. Assessment:**
Hypertension.

**4. Plan:**
Start lisinopril 10 mg daily."""
MARKDOWN_NOTE = """## S:
Headaches.
## O:
BP 148/90.
## A/P:
Hypertension; start lisinopril 10 mg daily."""


@pytest.mark.parametrize(
    "note", [ACI_NOTE, MEDSYNTH_NOTE, MARKDOWN_NOTE, NOTE_OK], ids=["aci", "medsynth", "md", "ours"]
)
def test_real_heading_variants_give_no_missing_section(note):
    assert _findings("note", "missing_section", note=note) == []


def test_a_combined_assessment_and_plan_counts_as_both():
    fields = note_field_texts(ACI_NOTE)
    assert fields["plan"] == fields["assessment"] == "Hypertension. Start lisinopril 10 mg daily."


def test_a_missing_or_empty_section_is_named():
    note = NOTE_OK.replace("OBJECTIVE:\nBlood pressure 148/90.", "OBJECTIVE:\n(none)").replace("PLAN:", "REMARKS:")
    (finding,) = _findings("note", "missing_section", note=note)
    assert finding.detail == ["Plan", "Objective"]


def test_vitals_under_subjective_are_misplaced():
    note = NOTE_OK.replace("and headaches.", "and headaches. Blood pressure 150/95 on exam.")
    assert _texts("note", "soap_misplaced", note=note) == ["150/95"] or "Blood pressure 150" in " ".join(
        _texts("note", "soap_misplaced", note=note)
    )
    assert _findings("note", "soap_misplaced") == []


def test_a_new_prescription_under_objective_is_misplaced():
    note = NOTE_OK.replace("Blood pressure 148/90.", "Blood pressure 148/90. Will start amlodipine.")
    assert _texts("note", "soap_misplaced", note=note) == ["Will start"]


def test_a_plan_without_an_action_is_flagged():
    note = NOTE_OK.replace("Start lisinopril 10 mg by mouth daily. Follow up in 2 weeks.", "Discussed at length.")
    assert len(_findings("note", "soap_plan_no_action", note=note)) == 1
    assert _findings("note", "soap_plan_no_action") == []


# --- coverage -------------------------------------------------------------------------------
def test_every_fact_said_in_its_usual_spoken_form_is_covered():
    # "148 over 90" spelled out, "ten milligrams", "two weeks", "high blood pressure" for hypertension.
    assert _findings("dialogue", "coverage_unspoken") == []
    assert _findings("dialogue", "coverage_prescription_unspoken") == []


def test_headings_and_template_words_are_not_facts():
    note = ACI_NOTE.replace("Hypertension. Start lisinopril 10 mg daily.", "SOCIAL HISTORY\nVITALS\nReviewed.")
    labels = [finding.detail for finding in _findings("dialogue", "coverage_unspoken", note=note)]
    assert not any("social" in label.lower() or "vitals" in label.lower() for label in labels)


def test_a_dropped_medication_is_an_unspoken_prescription():
    dialogue = DIALOGUE_OK.replace("lisinopril", "a new pill")
    findings = _findings("dialogue", "coverage_prescription_unspoken", dialogue=dialogue)
    assert [finding.detail for finding in findings] == ["lisinopril (medication)"]
    start, end = findings[0].spans[0]
    assert NOTE_OK[start:end] == "lisinopril"
    assert findings[0].span_kind == "note"


def test_a_changed_dose_is_an_unspoken_prescription():
    dialogue = DIALOGUE_OK.replace("ten milligrams", "twenty milligrams")
    findings = _findings("dialogue", "coverage_prescription_unspoken", dialogue=dialogue)
    assert [finding.detail for finding in findings] == ["10 mg (dose)"]


def test_a_small_typo_in_a_drug_name_still_counts_as_said():
    dialogue = DIALOGUE_OK.replace("lisinopril", "lisinoprill")
    assert _findings("dialogue", "coverage_prescription_unspoken", dialogue=dialogue) == []


def test_a_negated_finding_is_not_the_same_fact():
    note = NOTE_OK.replace("and headaches.", "and headaches. Denies chest pain.")
    affirmed = DIALOGUE_OK.replace("That sounds high to me, doctor.", "I also have chest pain when I walk.")
    negated = DIALOGUE_OK.replace("That sounds high to me, doctor.", "No chest pain at all.")
    assert [f.detail for f in _findings("dialogue", "coverage_polarity", note=note, dialogue=affirmed)] == [
        "no chest pain (symptom)"
    ]
    assert _findings("dialogue", "coverage_polarity", note=note, dialogue=negated) == []


def test_a_question_answered_no_is_a_negated_mention():
    note = NOTE_OK.replace("and headaches.", "and headaches. Denies fever.")
    dialogue = DIALOGUE_OK.replace("That sounds high to me, doctor.", "Any fever?\n[patient]: No.")
    assert _findings("dialogue", "coverage_polarity", note=note, dialogue=dialogue) == []


def test_a_dialogue_fact_the_note_lacks_is_a_note_omission():
    dialogue = DIALOGUE_OK.replace("come back?", "come back? I also take metformin.")
    assert _texts("dialogue", "coverage_note_omits", dialogue=dialogue) == ["metformin"]
    assert _findings("dialogue", "coverage_note_omits") == []


def test_terms_in_line_labels_are_not_facts_however_many_labels_come_before():
    visits = "\n".join(f"Visit {day}: reviewed." for day in range(1, 60))
    note = f"PLAN:\n{visits}\nChest pain: none since the last visit.\nHeadache diary: a headache twice a week."
    findings = _findings("dialogue", "coverage_unspoken", note=note, dialogue="[doctor]: Hello.\n[patient]: Hi.")
    # Only the headache after the last label's colon is a fact: not "chest pain" nor "Headache" in the labels.
    assert [note[start:end] for finding in findings for start, end in finding.spans] == ["headache"]
    assert note.index("a headache") + 2 == findings[0].spans[0][0]


def test_a_dialogue_fact_the_note_names_in_another_form_is_not_a_note_omission():
    dialogue = DIALOGUE_OK.replace("come back?", "come back? Should I get an MRI? And my A1C?")
    note = NOTE_OK.replace("Follow up", "Hemoglobin A1c next visit. Follow up")
    # "hemoglobin a1c" is a form of "a1c"; the MRI is nowhere in the note.
    assert _texts("dialogue", "coverage_note_omits", dialogue=dialogue, note=note) == ["MRI"]
    # A small typo in the note's drug name still names it.
    taking = DIALOGUE_OK.replace("come back?", "come back? I also take metformin.")
    assert _findings("dialogue", "coverage_note_omits", dialogue=taking, note=note + " Continue metforminn.") == []


def test_the_coverage_score_is_the_share_of_facts_said():
    subject = CheckSubject(kind="dialogue", note_text=NOTE_OK, dialogue_text=DIALOGUE_OK.replace("two weeks", "a bit"))
    (result,) = run_checks(subject, ("coverage_unspoken",))
    assert result.score is not None
    assert 0.5 < result.score < 1.0


# --- dialogue form --------------------------------------------------------------------------
def test_speakers_outside_the_known_set_and_a_silent_patient_are_flagged():
    dialogue = "\n".join(f"[{n}]: {text}" for n, text in [("1", "Hello there."), ("doctor", "Yes, hello.")])
    messages = [finding.message for finding in _findings("dialogue", "dialogue_speakers", dialogue=dialogue)]
    assert messages == ["Speakers outside the known set: 1", "The patient never speaks"]
    bold = DIALOGUE_OK.replace("[doctor]:", "**Doctor:**").replace("[patient]:", "Patient's mother:")
    assert [f.message for f in _findings("dialogue", "dialogue_speakers", dialogue=bold)] == [
        "The patient never speaks"
    ]
    assert _findings("dialogue", "dialogue_speakers") == []


def test_one_letter_turns_and_long_runs_are_flagged():
    letters = "\n".join(f"[{'doctor' if i % 2 else 'patient'}]: a" for i in range(8))
    messages = " ".join(finding.message for finding in _findings("dialogue", "dialogue_turns", dialogue=letters))
    assert "shorter than 2" in messages or "average" in messages
    run = "\n".join(["[doctor]: Let me explain this part to you."] * 8 + ["[patient]: I see, thank you."] * 2)
    assert any("in a row" in f.message for f in _findings("dialogue", "dialogue_turns", dialogue=run))
    assert _findings("dialogue", "dialogue_turns") == []


@pytest.mark.parametrize(
    ("added", "shown"),
    [
        ("Sure! Here is the conversation between the doctor and the patient:\n", "Sure!"),
        ("### Dialogue\n", "### Dialogue"),
        ("```\n", "```"),
        ("**Assessment:**\n", "**Assessment:**"),
    ],
)
def test_preambles_headers_and_code_fences_are_not_conversation(added, shown):
    texts = _texts("dialogue", "dialogue_meta_text", dialogue=added + DIALOGUE_OK)
    assert texts
    assert texts[0].startswith(shown)
    assert _findings("dialogue", "dialogue_meta_text") == []


def test_icd_codes_read_aloud_are_flagged_but_not_vitamin_b12():
    dialogue = DIALOGUE_OK.replace("It is.", "It is I10, and your vitamin B12 is fine.")
    assert _texts("dialogue", "dialogue_icd_code", dialogue=dialogue) == ["I10"]


def test_a_dialogue_in_another_language_is_flagged():
    spanish = "\n".join(
        [
            "[doctor]: Buenos días, ¿qué le trae por aquí hoy?",
            "[patient]: Tengo la presión alta y me duele la cabeza por las mañanas.",
            "[doctor]: Vamos a tomar la presión y le voy a recetar un medicamento para el dolor.",
            "[patient]: Muchas gracias, doctor, ¿tengo que volver la próxima semana?",
        ]
    )
    assert [f.detail for f in _findings("dialogue", "dialogue_language", dialogue=spanish)] == ["es"]
    assert _findings("dialogue", "dialogue_language", dialogue=spanish, language="es") == []
    assert _findings("dialogue", "dialogue_language") == []


def test_placeholders_are_flagged_in_a_dialogue():
    dialogue = DIALOGUE_OK.replace("Mrs. Lane", "[Patient Name]")
    assert _texts("dialogue", "placeholder", dialogue=dialogue) == ["[Patient Name]"]


# --- consistency ----------------------------------------------------------------------------
def test_a_renamed_patient_in_the_dialogue_is_a_mismatch():
    dialogue = DIALOGUE_OK.replace("Mrs. Lane", "Mrs. Porter")
    assert _texts("dialogue", "demographics_mismatch", dialogue=dialogue) == ["Porter"]
    assert _findings("dialogue", "demographics_mismatch") == []


def test_age_and_sex_must_agree_with_the_scenario():
    scenario = {"variables": {"demographics": "38-year-old man, works as a teacher"}}
    messages = [f.message for f in _findings("note", "demographics_mismatch", scenario=scenario)]
    assert messages == ["Age 54 here, 38 in the scenario", "Patient is female here, male in the scenario"]


@pytest.mark.parametrize(
    ("code", "flagged"),
    [
        (CodeFacts("N40.0", "Benign prostatic hyperplasia", "14", "N40-N53"), True),
        (CodeFacts("O24.410", "Gestational diabetes mellitus in pregnancy, diet controlled", "15", "O20-O29"), False),
        (CodeFacts("P07.30", "Preterm newborn, unspecified weeks of gestation", "16", "P05-P08"), True),
        (CodeFacts("Z00.129", "Encounter for routine child health examination", "21", "Z00-Z13"), True),
        (CodeFacts("I10", "Essential (primary) hypertension", "9", "I10-I1A"), False),
    ],
)
def test_a_sex_or_age_specific_code_must_fit_the_patient(code, flagged):
    # The patient is a 54-year-old woman: pregnancy at 54 is rare, but within the rule's bounds.
    assert bool(_findings("note", "code_demographics", code=code)) is flagged
