"""Near-duplicates on the item screen and as a review-queue filter."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import ArtefactKind, VersionSource
from generation.services.cases import artefact_version_create
from tests.factories import ClinicianFactory, IcdCodeFactory
from tests.review.review_fixtures import case_in_review
from tests.synthetic_text import lightly_edited, synthetic_text

pytestmark = pytest.mark.django_db


def _texts_replaced(case, *, note, dialogue):
    """A reviewer's edits of the note and the dialogue (the sample texts are all alike)."""
    for kind, text in ((ArtefactKind.NOTE, note), (ArtefactKind.DIALOGUE, dialogue)):
        artefact_version_create(
            case=case, kind=kind, content={}, source=VersionSource.HUMAN_EDIT, author=ClinicianFactory(), text=text
        )


@pytest.fixture
def duplicated(django_capture_on_commit_callbacks):
    """Two cases of different codes with nearly the same note, and a third one unlike them."""
    with django_capture_on_commit_callbacks(execute=True):
        first = case_in_review(code=IcdCodeFactory(code="J02.9"))
        second = case_in_review(code=IcdCodeFactory(code="R05.9"))
        other = case_in_review(code=IcdCodeFactory(code="E11.9"))
        note = synthetic_text(21)
        _texts_replaced(first, note=note, dialogue=synthetic_text(31))
        _texts_replaced(second, note=lightly_edited(note, changes=2), dialogue=synthetic_text(32))
        _texts_replaced(other, note=synthetic_text(22), dialogue=synthetic_text(33))
    return first, second, other


def test_the_item_screen_links_to_the_near_duplicates_of_any_code(clinician_client, duplicated):
    first, second, other = duplicated

    page = clinician_client.get(f"{reverse('review:item', args=[first.pk])}?queue=pair").content.decode()

    panel = page.split('id="near-duplicates-panel"')[1].split("</section>")[0]
    assert f"{reverse('review:item', args=[second.pk])}?queue=pair" in panel
    assert "R05.9" in panel
    assert f"Case #{other.pk}<" not in panel
    lonely = clinician_client.get(f"{reverse('review:item', args=[other.pk])}?queue=pair").content.decode()
    assert "None found across the dataset." in lonely


def test_the_queue_filter_keeps_the_cases_with_near_duplicates(clinician_client, duplicated):
    first, second, other = duplicated

    page = clinician_client.get(reverse("review:queue", args=["pair"]), {"near_duplicates": "1"}).content.decode()

    assert reverse("review:item", args=[first.pk]) in page
    assert reverse("review:item", args=[second.pk]) in page
    assert reverse("review:item", args=[other.pk]) not in page
