"""The batch form's code picker: the autocomplete over the catalogue and the preview of the
chosen codes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import CaseStatus, GenerationBatch, IcdCode
from tests.factories import CaseFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import make_endpoint
from tests.llm_replay import llm_replay, models_response

pytestmark = pytest.mark.django_db

SEARCH = reverse("generation:code-search")
PREVIEW = reverse("generation:code-preview")
HTMX = {"HX-Request": "true"}


def picked_codes(response):
    """The data-code of every option, in order."""
    return [part.split('"')[0] for part in response.text.split('data-code="')[1:]]


@pytest.fixture
def diabetes_codes():
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", frequency=50)
    IcdCodeFactory(code="E11.65", description="Type 2 diabetes mellitus with hyperglycemia", frequency=900)
    IcdCodeFactory(code="E10.9", description="Type 1 diabetes mellitus without complications")
    IcdCodeFactory(code="I10", description="Essential (primary) hypertension", frequency=1200)


def test_it_is_for_admins_only(clinician_client):
    assert clinician_client.get(SEARCH, {"q": "E11"}).status_code == 403
    assert clinician_client.get(PREVIEW, {"codes": "E11"}).status_code == 403


def test_a_typed_code_prefix_finds_its_codes_with_or_without_the_dot(admin_member_client, diabetes_codes):
    assert picked_codes(admin_member_client.get(SEARCH, {"q": "e11"}, headers=HTMX)) == ["E11.65", "E11.9"]
    assert picked_codes(admin_member_client.get(SEARCH, {"q": "E11.6"}, headers=HTMX)) == ["E11.65"]
    assert picked_codes(admin_member_client.get(SEARCH, {"q": "E116"}, headers=HTMX)) == ["E11.65"]


def test_words_find_codes_by_description_most_frequent_first(admin_member_client, diabetes_codes):
    response = admin_member_client.get(SEARCH, {"q": "diabetes WITHOUT"}, headers=HTMX)
    # Both words in the description; E11.9 has a frequency, E10.9 none (last).
    assert picked_codes(response) == ["E11.9", "E10.9"]
    assert 'role="option"' in response.text


def test_a_number_stays_with_the_word_before_it(admin_member_client, diabetes_codes):
    # "type 2" is one part of the description: type 1 diabetes is not offered.
    response = admin_member_client.get(SEARCH, {"q": "type 2 diab"}, headers=HTMX)
    assert picked_codes(response) == ["E11.65", "E11.9"]


def test_no_match_says_so(admin_member_client, diabetes_codes):
    response = admin_member_client.get(SEARCH, {"q": "fracture"}, headers=HTMX)
    assert picked_codes(response) == []
    assert "No code matches “fracture”." in response.text


def test_the_descriptions_are_escaped(admin_member_client):
    IcdCodeFactory(code="X99.1", description="<script>alert(1)</script> injury")
    response = admin_member_client.get(SEARCH, {"q": "injury"}, headers=HTMX)
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_the_search_answers_with_the_same_number_of_queries_for_few_or_many_codes(admin_member_client):
    for n in range(30):
        IcdCodeFactory(code=f"K{n // 10 + 20}.{n % 10}", description=f"Gastric condition {n}")

    def queries_for(query):
        with CaptureQueriesContext(connection) as captured:
            response = admin_member_client.get(SEARCH, {"q": query}, headers=HTMX)
        return len(picked_codes(response)), len(captured)

    few, many = queries_for("K20"), queries_for("gastric")
    assert (few[0], many[0]) == (10, 20)  # K20.0-K20.9; 30 matches cut at the limit
    assert few[1] == many[1]


def test_the_preview_shows_frequency_approved_pairs_and_new_pairs(admin_member_client, diabetes_codes):
    e11 = IcdCodeFactory(code="E11.9")
    CaseFactory(code=e11, status=CaseStatus.APPROVED)
    CaseFactory(code=e11, status=CaseStatus.APPROVED)
    CaseFactory(code=e11, status=CaseStatus.DIALOGUE_REVIEW)
    response = admin_member_client.get(
        PREVIEW, {"codes": "E11.9, I10", "pairs_per_code": "1", "target_approved": "4"}, headers=HTMX
    )
    text = " ".join(response.text.split())
    # E11.9: frequency 50, 2 approved, 1 underway, lacks 4 - 2 - 1 = 1; I10: 1200, 0, 0, lacks 4.
    assert '<td class="num">50</td><td class="num">2</td> <td class="num">1</td><td class="num">1</td>' in text
    assert '<td class="num">1200</td><td class="num">0</td> <td class="num">0</td><td class="num">4</td>' in text
    assert "<strong>2</strong> code(s); <strong>5</strong> new pair(s)" in text


def test_the_preview_says_what_is_wrong(admin_member_client, diabetes_codes):
    unknown = admin_member_client.get(PREVIEW, {"codes": "E11.9, NOPE", "pairs_per_code": "1"}, headers=HTMX)
    assert "Unknown ICD-10-CM code(s): NOPE" in unknown.text
    invalid = admin_member_client.get(PREVIEW, {"top": "0", "pairs_per_code": "1"}, headers=HTMX)
    assert "Or the top N codes by frequency: Ensure this value is greater than or equal to 1." in invalid.text
    empty = admin_member_client.get(PREVIEW, {"pairs_per_code": "1"}, headers=HTMX)
    assert "Choose codes to see them here" in empty.text


def test_the_batch_form_carries_the_code_picker(admin_member_client):
    response = admin_member_client.get(reverse("generation:batch-launch"))
    assert 'role="combobox"' in response.text
    assert f'hx-get="{SEARCH}"' in response.text
    assert f'hx-get="{PREVIEW}"' in response.text
    assert 'name="codes"' in response.text


def bulk_codes(prefix, chapter, count):
    IcdCode.objects.bulk_create(
        IcdCode(
            code=f"{prefix}{n:03d}",
            code_compact=f"{prefix}{n:03d}",
            description=f"Test condition {n}",
            chapter=chapter,
            block=f"{prefix}00-{prefix}99",
            depth=2,
            is_billable=True,
        )
        for n in range(count)
    )


def test_the_preview_answers_with_the_same_number_of_queries_for_few_or_many_codes(admin_member_client):
    bulk_codes("A", "1", 3)
    bulk_codes("B", "2", 950)  # more codes than one query may list by id on SQLite
    CaseFactory(code=IcdCode.objects.get(code="B000"), status=CaseStatus.APPROVED)

    def preview_of_chapter(chapter):
        with CaptureQueriesContext(connection) as captured:
            response = admin_member_client.get(PREVIEW, {"chapter": chapter, "pairs_per_code": "1"}, headers=HTMX)
        return response, len(captured)

    (few, few_queries), (many, many_queries) = preview_of_chapter("1"), preview_of_chapter("2")
    assert "<strong>3</strong> code(s)" in few.text
    assert "<strong>950</strong> code(s)" in many.text
    assert "And 750 more code(s), not shown." in many.text
    # Counted over every case when the codes are too many to list by id: B000 has 1 approved.
    assert '<td>B000</td><td>Test condition 0</td><td>2</td> <td class="num">–</td><td class="num">1</td>' in " ".join(
        many.text.split()
    )
    assert few_queries == many_queries


def test_the_batch_form_plans_a_stratified_top_up(admin_member_client):
    endpoint = make_endpoint()
    for code, chapter, frequency in [("E11.9", "4", 500), ("E10.9", "4", 400), ("I10", "9", 80)]:
        IcdCodeFactory(code=code, chapter=chapter, frequency=frequency)
    CaseFactory(code=IcdCode.objects.get(code="E11.9"), status=CaseStatus.APPROVED)
    form = {"top": "2", "minimum_per_chapter": "1", "pairs_per_code": "1", "target_approved": "2"}
    with llm_replay([models_response(["test-model"])]):
        response = admin_member_client.post(
            reverse("generation:batch-confirm"), {**form, "endpoint": endpoint.pk, "reviews_required": "1"}
        )
    assert response.status_code == 302
    # Stratified top 2: E11.9 (chapter 4) and I10 (chapter 9), not E10.9. E11.9 lacks 1, I10 2.
    batch = GenerationBatch.objects.latest("id")
    assert sorted(batch.cases.values_list("code__code", "slot")) == [("E11.9", 1), ("I10", 1), ("I10", 2)]
