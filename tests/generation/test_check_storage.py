"""The check results stored per version follow the case's current texts: a note edit
refreshes the dialogue's coverage and the case's badge (with the write, or after its commit
when the dialogue changed meanwhile), and `manage.py run_checks` recomputes what an older
check version wrote."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from generation.models import ArtefactKind, ArtefactVersion, Case, VersionSource
from generation.services.cases import artefact_version_create, artefact_version_draft, artefact_version_write
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db

QUIET_NOTE = {
    "subjective": "Thirsty for weeks.",
    "objective": "Looks well today.",
    "assessment": "Probable diabetes.",
    "plan": "Check fasting glucose.",
}
QUIET_DIALOGUE = {
    "turns": [
        {"speaker": speaker, "text": text}
        for speaker, text in [
            ("doctor", "Good morning, what brings you in?"),
            ("patient", "I have been so thirsty for weeks now."),
            ("doctor", "You look well today, which is good."),
            ("patient", "I feel fine apart from the thirst."),
            ("doctor", "This is probably diabetes, so we will check a fasting glucose."),
            ("patient", "All right, thank you for explaining."),
        ]
    ]
}
PRESCRIBING_NOTE = {**QUIET_NOTE, "plan": "Check fasting glucose. Start metformin 500 mg twice daily."}


def _codes(version: ArtefactVersion) -> set[str]:
    version.refresh_from_db()
    return {flag["code"] for flag in version.check_flags}


def _write(case: Case, kind: str, content: dict, capture) -> ArtefactVersion:
    with capture(execute=True):
        return artefact_version_create(case=case, kind=kind, content=content, source=VersionSource.LLM_RAW)


@pytest.fixture
def quiet_case(django_capture_on_commit_callbacks) -> tuple[Case, ArtefactVersion]:
    case = CaseFactory()
    _write(case, ArtefactKind.NOTE, QUIET_NOTE, django_capture_on_commit_callbacks)
    dialogue = _write(case, ArtefactKind.DIALOGUE, QUIET_DIALOGUE, django_capture_on_commit_callbacks)
    return case, dialogue


def test_a_note_edit_refreshes_the_coverage_of_the_current_dialogue_and_the_badge(
    quiet_case, django_capture_on_commit_callbacks
):
    case, dialogue = quiet_case
    assert _codes(dialogue) == set()
    assert Case.objects.get(pk=case.pk).has_check_flags is False

    _write(case, ArtefactKind.NOTE, PRESCRIBING_NOTE, django_capture_on_commit_callbacks)

    assert "coverage_prescription_unspoken" in _codes(dialogue)  # the same dialogue version, checked again
    case.refresh_from_db()
    assert case.has_check_flags is True
    assert " coverage_prescription_unspoken:error " in case.check_summary

    _write(case, ArtefactKind.NOTE, QUIET_NOTE, django_capture_on_commit_callbacks)
    assert _codes(dialogue) == set()
    case.refresh_from_db()
    assert (case.has_check_flags, case.check_summary) == (False, "")


def test_a_refresh_keeps_an_importers_flags(quiet_case, django_capture_on_commit_callbacks):
    case, dialogue = quiet_case
    unparsed = {"code": "unparsed", "message": "Text before the first speaker tag.", "detail": None}
    ArtefactVersion.objects.filter(pk=dialogue.pk).update(check_flags=[unparsed])
    _write(case, ArtefactKind.NOTE, PRESCRIBING_NOTE, django_capture_on_commit_callbacks)
    assert _codes(dialogue) == {"unparsed", "coverage_prescription_unspoken"}


def _run_checks(*args: str) -> str:
    out = StringIO()
    call_command("run_checks", *args, stdout=out)
    return out.getvalue()


def test_run_checks_recomputes_versions_checked_by_an_older_check_version_once(quiet_case):
    case, dialogue = quiet_case
    ArtefactVersion.objects.filter(pk=dialogue.pk).update(
        check_versions={**dialogue.check_versions, "coverage_unspoken": 0}, check_flags=[{"code": "coverage_unspoken"}]
    )
    Case.objects.filter(pk=case.pk).update(has_check_flags=True, check_summary=" coverage_unspoken:warning ")

    assert "1 seen, 1 rechecked" in _run_checks("--batch", "1")
    assert _codes(dialogue) == set()
    assert Case.objects.get(pk=case.pk).has_check_flags is False
    assert "1 seen, 0 rechecked" in _run_checks()  # idempotent


def test_run_checks_with_a_check_code_recomputes_only_that_check(quiet_case):
    case, dialogue = quiet_case
    stale = {**dialogue.check_versions, "dialogue_turns": 0}
    ArtefactVersion.objects.filter(pk=dialogue.pk).update(check_versions=stale)

    assert "0 rechecked" in _run_checks("--check", "placeholder")
    assert "1 rechecked" in _run_checks("--check", "dialogue_turns")
    dialogue.refresh_from_db()
    assert dialogue.check_versions["dialogue_turns"] == 1


def test_a_note_write_stores_the_dialogues_new_coverage_with_it(quiet_case, django_capture_on_commit_callbacks):
    case, dialogue = quiet_case
    with django_capture_on_commit_callbacks(execute=False):  # nothing that runs after the commit
        artefact_version_create(
            case=case, kind=ArtefactKind.NOTE, content=PRESCRIBING_NOTE, source=VersionSource.LLM_RAW
        )
    assert "coverage_prescription_unspoken" in _codes(dialogue)
    assert " coverage_prescription_unspoken:error " in Case.objects.get(pk=case.pk).check_summary


def test_a_dialogue_written_between_a_notes_draft_and_its_write_is_checked_after_the_commit(
    quiet_case, django_capture_on_commit_callbacks
):
    case, _dialogue = quiet_case
    # Checked beside the quiet dialogue, which never mentions metformin...
    draft = artefact_version_draft(case=case, kind=ArtefactKind.NOTE, content=PRESCRIBING_NOTE)
    turns = [*QUIET_DIALOGUE["turns"], {"speaker": "doctor", "text": "And start metformin 500 mg twice daily."}]
    saying_it = _write(case, ArtefactKind.DIALOGUE, {"turns": turns}, django_capture_on_commit_callbacks)
    # ...but written once a dialogue that says it is current: that one is checked beside the note.
    with django_capture_on_commit_callbacks(execute=True):
        artefact_version_write(case=case, draft=draft, source=VersionSource.LLM_RAW)
    assert _codes(saying_it) == set()
    case.refresh_from_db()
    assert (case.has_check_flags, case.check_summary) == (False, "")


def test_a_draft_checked_beside_a_note_that_changed_before_its_write_is_checked_again(
    quiet_case, django_capture_on_commit_callbacks
):
    from generation.services.cases import artefact_version_draft, artefact_version_write

    case, _ = quiet_case
    draft = artefact_version_draft(case=case, kind=ArtefactKind.DIALOGUE, content=QUIET_DIALOGUE)
    assert draft.check_flags == []  # checked beside the quiet note
    # Another writer's note, between this draft and its write (an agent's call takes seconds).
    _write(case, ArtefactKind.NOTE, PRESCRIBING_NOTE, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        written = artefact_version_write(case=case, draft=draft, source=VersionSource.LLM_RAW)

    assert "coverage_prescription_unspoken" in _codes(written)
    case.refresh_from_db()
    assert " coverage_prescription_unspoken:error " in case.check_summary
