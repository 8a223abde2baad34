import pytest
from django.urls import reverse

from generation.models import QualityVariable, SurveySnapshot
from review.models import SurveyResponse, VariableSuggestion
from tests.factories import ClinicianFactory

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
    top = snapshot.ranked_keys()[0]
    assert preview.index(f"({top}, weight") < preview.index(f"({snapshot.ranked_keys()[-1]}, weight")


def test_publishing_an_empty_round_says_why(admin_member_client):
    response = admin_member_client.post(reverse("review:survey-publish"), follow=True)
    assert "Nobody has answered" in response.content.decode()
    assert not SurveySnapshot.objects.exists()
