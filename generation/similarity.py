"""How close a new scenario is to the approved scenarios of the same code.

TF-IDF cosine over the variable values (word unigrams and bigrams): the judge sees the
K most similar approved scenarios, and a scenario above the near-duplicate threshold is
rejected without spending an LLM call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from generation.models import (
    AgentName,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    IcdCode,
    PipelineStep,
    StepStatus,
)
from generation.selectors import current_versions_of_cases

DEFAULT_K = 5
DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.9


@dataclass(frozen=True)
class SimilarScenario:
    case_id: int
    version_id: int
    similarity: float
    content: dict[str, Any]


def scenario_document(content: dict[str, Any]) -> str:
    """The text compared: the variable values only (not the keys every scenario shares)."""
    variables = content.get("variables") or {}
    return "\n".join(str(value) for value in variables.values())


def approved_scenarios(*, code: IcdCode, exclude_case: Case | None = None) -> list[ArtefactVersion]:
    """The latest scenario of every other case of this code that the judge approved
    (or a clinician approved outright), unless the case was later rejected or cancelled."""
    judged = PipelineStep.objects.filter(
        agent=AgentName.SCENARIO_JUDGE, status=StepStatus.SUCCEEDED, result__approved=True, case__code=code
    ).values("case_id")
    cases = Case.objects.filter(code=code, pk__in=judged).exclude(
        status__in=[CaseStatus.REJECTED, CaseStatus.CANCELLED]
    ) | Case.objects.filter(code=code, status=CaseStatus.APPROVED)
    if exclude_case is not None:
        cases = cases.exclude(pk=exclude_case.pk)
    case_ids = list(cases.distinct().order_by("id").values_list("id", flat=True))
    current = current_versions_of_cases(case_ids=case_ids, kind=ArtefactKind.SCENARIO)
    return [
        current[(case_id, ArtefactKind.SCENARIO)] for case_id in case_ids if (case_id, ArtefactKind.SCENARIO) in current
    ]


def most_similar(*, content: dict[str, Any], candidates: list[ArtefactVersion], k: int) -> list[SimilarScenario]:
    """The k candidates closest to `content`, most similar first."""
    if not candidates or k <= 0:
        return []
    documents = [scenario_document(content)] + [scenario_document(version.content) for version in candidates]
    if not any(document.strip() for document in documents):
        return []
    try:
        matrix = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(documents)
    except ValueError:  # no word survived tokenisation: nothing to compare
        return []
    scores = cosine_similarity(matrix[0], matrix[1:])[0]
    ranked = sorted(zip(candidates, scores, strict=True), key=lambda pair: -pair[1])[:k]
    return [
        SimilarScenario(
            case_id=version.case_id, version_id=version.pk, similarity=float(score), content=version.content
        )
        for version, score in ranked
    ]
