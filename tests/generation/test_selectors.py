import pytest

from generation.models import ArtefactKind, VersionSource
from generation.selectors import current_versions_of_cases
from generation.services.cases import artefact_version_create
from tests.factories import SAMPLE_NOTE, SAMPLE_SCENARIO, CaseFactory, ClinicianFactory


@pytest.mark.django_db
def test_current_versions_of_many_cases_in_one_query_skip_drafts(django_assert_num_queries):
    first, second = CaseFactory(), CaseFactory()
    note = artefact_version_create(case=first, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source="llm_raw")
    polished = artefact_version_create(case=first, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source="llm_polished")
    artefact_version_create(
        case=first, kind=ArtefactKind.NOTE, content=SAMPLE_NOTE, source=VersionSource.HUMAN_DRAFT,
        author=ClinicianFactory(), parent=polished,
    )  # fmt: skip
    scenario = artefact_version_create(
        case=second, kind=ArtefactKind.SCENARIO, content=SAMPLE_SCENARIO, source="llm_raw"
    )

    with django_assert_num_queries(1):
        current = current_versions_of_cases(case_ids=[first.pk, second.pk])

    assert current == {(first.pk, "note"): polished, (second.pk, "scenario"): scenario}
    assert note != polished
    assert current_versions_of_cases(case_ids=[first.pk, second.pk], kind="scenario") == {
        (second.pk, "scenario"): scenario
    }
