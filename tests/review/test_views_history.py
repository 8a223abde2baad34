import pytest
from django.urls import reverse

from generation.models import AgentCall, ArtefactKind, VersionSource
from generation.services.cases import artefact_version_create
from review import services
from tests.review.review_fixtures import case_in_review

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_history_lists_every_version_with_source_and_author(clinician, clinician_client):
    case = case_in_review()
    services.note_section_edit(
        case=case, author=clinician, section="plan", text="Start metformin 1000 mg.", base_number=1
    )
    body = clinician_client.get(reverse("review:history", args=[case.pk])).content.decode()
    assert "Human edit" in body
    assert "LLM (polished)" in body
    assert clinician.username in body


def test_note_diff_marks_changed_words_per_section(clinician, clinician_client):
    case = case_in_review()
    services.note_section_edit(
        case=case,
        author=clinician,
        section="plan",
        text="Start metformin 1000 mg by mouth twice daily. Recheck HbA1c in 3 months.",
        base_number=1,
    )
    url = f"{reverse('review:history', args=[case.pk])}?kind=note&a=1&b=2"
    full = clinician_client.get(url).content.decode()
    assert "<del>500 </del><ins>1000 </ins>" in full
    partial = clinician_client.get(url, **HTMX).content.decode()
    assert partial.lstrip().startswith('<div id="version-diff"')
    assert "<html" not in partial


def test_dialogue_diff_is_per_turn_and_notes_added_turns(clinician, clinician_client):
    case = case_in_review()
    services.dialogue_turn_change(
        case=case,
        author=clinician,
        operation="edit",
        index=0,
        base_number=1,
        speaker="doctor",
        text="Hello, what brings you in today?",
    )
    services.dialogue_turn_change(
        case=case,
        author=clinician,
        operation="insert",
        index=1,
        base_number=2,
        speaker="patient",
        text="Also my feet tingle.",
    )
    body = clinician_client.get(f"{reverse('review:history', args=[case.pk])}?kind=dialogue&a=1&b=3").content.decode()
    assert "<del>Hi, </del><ins>Hello, </ins>" in body
    assert "added" in body
    assert "<ins>Also my feet tingle.</ins>" in body


def test_raw_llm_output_is_one_click_from_history(clinician_client):
    case = case_in_review()
    call = AgentCall.objects.create(
        case=case,
        agent="note_writer",
        endpoint_name="e",
        model="m-1",
        prompt_version="note_writer@3",
        request_messages=[{"role": "user", "content": "Q"}],
        raw_response='{"plan": "<b>raw</b>"}',
    )
    artefact_version_create(
        case=case, kind=ArtefactKind.NOTE, content={"plan": "raw"}, source=VersionSource.LLM_RAW, agent_call=call
    )
    history = clinician_client.get(reverse("review:history", args=[case.pk])).content.decode()
    assert f"#call-{call.pk}" in history
    provenance = clinician_client.get(reverse("review:provenance", args=[case.pk]), **HTMX).content.decode()
    assert provenance.lstrip().startswith('<section id="provenance-panel"')
    assert "note_writer@3" in provenance
    assert "m-1" in provenance
    assert "&lt;b&gt;raw&lt;/b&gt;" in provenance
