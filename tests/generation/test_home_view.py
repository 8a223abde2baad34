import pytest
from django.urls import reverse

from generation.models import CaseStatus
from generation.services.endpoints import default_endpoint_configure
from tests.factories import CaseFactory, IcdCodeFactory


@pytest.mark.django_db
def test_an_empty_install_says_what_to_do_next(clinician_client):
    page = clinician_client.get(reverse("home")).content.decode()
    assert "The catalogue is empty" in page
    assert "No cases yet" in page


@pytest.mark.django_db
def test_it_shows_codes_frequencies_cases_and_batches(clinician_client):
    IcdCodeFactory(code="I10", frequency=30)
    IcdCodeFactory(code="E11.9")
    CaseFactory(status=CaseStatus.PAIR_REVIEW, batch__name="Pilot batch")
    CaseFactory(status=CaseStatus.APPROVED)
    page = clinician_client.get(reverse("home")).content.decode()
    assert "<strong>4</strong> codes loaded" in page  # two above, one per case factory
    assert "<strong>1</strong> codes have imported frequencies" in page
    assert "Pair awaiting final review" in page
    assert "Approved" in page
    assert "Pilot batch" in page


@pytest.mark.django_db
def test_it_warns_when_the_local_demo_model_generates(clinician_client, settings):
    settings.LLM_PROVIDER_CONFIGURED = False
    default_endpoint_configure()
    page = clinician_client.get(reverse("home")).content.decode()
    assert "tiny local demo model" in page
    assert "not clinical content" in page
