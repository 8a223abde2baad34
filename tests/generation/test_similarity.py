from __future__ import annotations

import pytest

from generation.models import AgentName, ArtefactKind, CaseStatus, PipelineStep, StepStatus, VersionSource
from generation.services.cases import artefact_version_create
from generation.similarity import approved_scenarios, most_similar
from tests.factories import CaseFactory, IcdCodeFactory

pytestmark = pytest.mark.django_db


def _scenario(text: str) -> dict:
    words = text.split("|")
    return {"role": "General physician", "variables": {f"v{i}": value for i, value in enumerate(words)}}


def _approved_case(code, text, *, status=CaseStatus.PAIR_REVIEW):
    case = CaseFactory(code=code, status=status)
    artefact_version_create(
        case=case, kind=ArtefactKind.SCENARIO, content=_scenario(text), source=VersionSource.LLM_RAW
    )
    PipelineStep.objects.create(
        case=case, agent=AgentName.SCENARIO_JUDGE, status=StepStatus.SUCCEEDED, result={"approved": True}
    )
    return case


def test_the_most_similar_approved_scenarios_come_first():
    code = IcdCodeFactory(code="I10")
    farmer = _approved_case(code, "68-year-old farmer in Iowa|amlodipine 5 mg daily|salty diet")
    teacher = _approved_case(code, "35-year-old teacher in Boston|lisinopril 10 mg daily|runs marathons")
    candidates = approved_scenarios(code=code)

    found = most_similar(
        content=_scenario("70-year-old farmer in Iowa|amlodipine 10 mg daily|salty food"), candidates=candidates, k=5
    )

    assert [item.case_id for item in found] == [farmer.pk, teacher.pk]
    assert found[0].similarity > 0.5 > found[1].similarity
    assert most_similar(
        content=_scenario("68-year-old farmer in Iowa|amlodipine 5 mg daily|salty diet"), candidates=candidates, k=1
    )[0].similarity == pytest.approx(1.0)


def test_only_judge_approved_live_scenarios_of_the_same_code_count():
    code, other_code = IcdCodeFactory(code="I10"), IcdCodeFactory(code="E11.9")
    kept = _approved_case(code, "a|b")
    _approved_case(code, "c|d", status=CaseStatus.REJECTED)
    _approved_case(other_code, "a|b")
    unjudged = CaseFactory(code=code, status=CaseStatus.SCENARIO_GENERATING)
    artefact_version_create(
        case=unjudged, kind=ArtefactKind.SCENARIO, content=_scenario("a|b"), source=VersionSource.LLM_RAW
    )

    assert [version.case_id for version in approved_scenarios(code=code)] == [kept.pk]
    assert approved_scenarios(code=code, exclude_case=kept) == []
