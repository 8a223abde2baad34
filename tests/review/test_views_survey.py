import pytest
from django.urls import reverse

from generation.agents import scenario_provider
from generation.models import QualityVariable, SurveySnapshot
from generation.selectors import ranked_variables
from review.models import SurveyResponse, VariableSuggestion
from tests.factories import ClinicianFactory, IcdCodeFactory

pytestmark = pytest.mark.django_db


def answers(scores: dict[int, int]) -> dict[str, str]:
    data = {f"score_{pk}": str(score) for pk, score in scores.items()}
    data |= {f"suggestion_{pk}": "" for pk in scores}
    return data


def all_scores(first: int) -> dict[int, int]:
    variables = list(QualityVariable.objects.filter(is_active=True).order_by("position"))
    return {v.pk: max(1, min(10, first - i % 3)) for i, v in enumerate(variables)}


def test_the_survey_lists_the_seeded_variables_and_saves_answers(clinician, clinician_client):
    variables = QualityVariable.objects.filter(is_active=True)
    assert variables.count() >= 13
    page = clinician_client.get(reverse("review:survey")).content.decode()
    assert all(v.name in page for v in variables)
    data = answers(all_scores(9)) | {"new_variable_name": "Social support", "new_variable_description": "Who helps"}
    response = clinician_client.post(reverse("review:survey"), data)
    assert response.status_code == 302
    assert SurveyResponse.objects.filter(clinician=clinician, round=1).count() == variables.count()
    assert VariableSuggestion.objects.get().name == "Social support"


def test_a_score_out_of_range_is_refused(clinician_client):
    scores = all_scores(9)
    first = next(iter(scores))
    scores[first] = 11
    response = clinician_client.post(reverse("review:survey"), answers(scores))
    assert response.status_code == 200
    assert "from 1 to 10" in response.content.decode()
    assert not SurveyResponse.objects.exists()


def test_results_publish_a_snapshot_that_orders_the_prompt_preview(clinician_client, admin_member_client):
    variables = list(QualityVariable.objects.filter(is_active=True).order_by("position"))
    clinician_client.post(reverse("review:survey"), answers(all_scores(9)))
    second = ClinicianFactory()
    clinician_client.force_login(second)
    reversed_scores = {v.pk: 10 if v == variables[-1] else 5 for v in variables}
    clinician_client.post(reverse("review:survey"), answers(reversed_scores))
    results = admin_member_client.get(reverse("review:survey-results")).content.decode()
    assert "2 clinicians answered" in results
    assert "Krippendorff" in results
    admin_member_client.post(reverse("review:survey-publish"), {"notes": "first round"})
    snapshot = SurveySnapshot.objects.get()
    assert snapshot.version == 1
    assert snapshot.respondents == 2
    assert snapshot.weights[variables[-1].key] == pytest.approx((10 + max(1, 9 - (len(variables) - 1) % 3)) / 2)
    preview = admin_member_client.get(reverse("review:survey-results")).content.decode()
    assert "round 2" in preview
    assert "Latest published snapshot: <strong>v1</strong>" in preview
    # Both clinicians gave the last variable their top score, so it leads the preview.
    assert preview.index(f"({variables[-1].key}, weight") < preview.index(f"({variables[0].key}, weight")


def test_publishing_an_empty_round_says_why(admin_member_client):
    response = admin_member_client.post(reverse("review:survey-publish"), follow=True)
    assert "Nobody has answered" in response.content.decode()
    assert not SurveySnapshot.objects.exists()


def test_the_prompt_preview_shows_the_order_the_prompts_use_when_scores_tie(admin_member_client):
    """Tied weights keep the survey's table order; an inactive variable is in neither."""
    by_position = list(QualityVariable.objects.order_by("position"))
    retired = by_position[1]
    QualityVariable.objects.filter(pk=retired.pk).update(is_active=False)
    active = [v for v in by_position if v.pk != retired.pk]
    # The last active variable is rated highest; all others tie at 5, including the retired
    # one, whose key sorts before every tied key (so "ties by key" would differ).
    weights = {v.key: 5.0 for v in by_position} | {active[-1].key: 9.0, retired.key: 9.5}
    snapshot = SurveySnapshot.objects.create(version=1, weights=weights, respondents=2)
    expected = [active[-1].key] + [v.key for v in active[:-1]]

    page = admin_member_client.get(reverse("review:survey-results")).content.decode()
    preview = page[page.index("prompt-preview") :]
    positions = [preview.index(f"({key}, weight") for key in expected]
    assert positions == sorted(positions)
    assert f"({retired.key}," not in preview

    messages = scenario_provider.build_messages(
        code=IcdCodeFactory(),
        roles=[],
        variables=ranked_variables(snapshot=snapshot),
        survey=snapshot,
        examples=[],
    )
    prompt = messages[-1]["content"]
    names = {v.key: v.name for v in active}
    in_prompt = [prompt.index(names[key]) for key in expected]
    assert in_prompt == sorted(in_prompt)
    assert retired.name not in prompt
