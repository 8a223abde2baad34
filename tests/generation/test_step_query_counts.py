"""An agent step costs the same number of queries whatever the size of its batch: nothing in a
step reads or writes row by row over the batch's other cases (counters, examples, similarity)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import Case, CaseStatus, PipelineStep, QualityVariable, StepStatus
from generation.services.pipeline import case_start, pipeline_step_run
from tests import fake_llm_server
from tests.factories import CaseFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import answers, make_batch
from tests.llm_replay import llm_replay
from tests.review.review_fixtures import case_in_review

pytestmark = pytest.mark.django_db

# A ceiling, so that a step does not quietly grow new round trips (each costs our CPU per LLM call).
MAX_QUERIES_PER_STEP = 60  # the dialogue polisher, with its checks and near-duplicate index
AGENTS_IN_ORDER = [
    "scenario_provider",
    "scenario_judge",
    "note_writer",
    "note_polisher",
    "dialogue_generator",
    "dialogue_polisher",
]


def _queries_per_agent(*, other_cases: int, code: str, on_commit: Any) -> dict[str, int]:
    """Run one case through all six agents in a batch with `other_cases` more cases of the same
    code (its own code: the two runs do not compare scenarios), a third planned, a third in final
    review and a third approved; the queries of each step, with what runs once it commits (the checks
    and the near-duplicate index; the next step's message is not sent: no broker here)."""
    batch = make_batch()
    code = IcdCodeFactory(code=code, description="Type 2 diabetes mellitus", chapter="4")
    for n in range(other_cases):
        if n % 3 == 0:
            CaseFactory(batch=batch, code=code, role=None, status=CaseStatus.PLANNED)
            continue
        produced = case_in_review(CaseStatus.PAIR_REVIEW, batch=batch, code=code)
        if n % 3 == 2:  # approved: the judge compares the new scenario with it
            Case.objects.filter(pk=produced.pk).update(status=CaseStatus.APPROVED)
    case = CaseFactory(batch=batch, code=code, role=None, status=CaseStatus.PLANNED)
    case_start(case=case)
    counts: dict[str, int] = {}
    with llm_replay(answers(len(AGENTS_IN_ORDER))):
        while step := PipelineStep.objects.filter(case=case, status=StepStatus.PENDING).first():
            with CaptureQueriesContext(connection) as captured, on_commit(execute=True):
                pipeline_step_run(step_id=step.pk, task_id=f"test-{step.pk}")
            counts[step.agent] = len(captured)
    assert Case.objects.get(pk=case.pk).status == CaseStatus.PAIR_REVIEW
    assert Case.objects.filter(batch=batch).count() == other_cases + 1
    return counts


@mock.patch("generation.services.pipeline.steps.step_enqueue", mock.Mock())
def test_each_agent_step_makes_as_many_queries_in_a_batch_of_200_cases_as_in_one_of_20(
    django_capture_on_commit_callbacks: Any,
):
    # A first case written by the same answers, so that both measured cases have a near duplicate
    # (whose pairs are stored) and differ only in the size of their batch.
    _queries_per_agent(other_cases=0, code="E11.7", on_commit=django_capture_on_commit_callbacks)
    few = _queries_per_agent(other_cases=19, code="E11.8", on_commit=django_capture_on_commit_callbacks)
    assert list(few) == AGENTS_IN_ORDER
    many = _queries_per_agent(other_cases=199, code="E11.9", on_commit=django_capture_on_commit_callbacks)
    assert many == few, (few, many)
    assert max(few.values()) <= MAX_QUERIES_PER_STEP, few


REFERENCE_TABLES = ("generation_qualityvariable", "generation_physicianrole", "generation_llmmodel")


@mock.patch("generation.services.pipeline.steps.step_enqueue", mock.Mock())
def test_with_the_process_caches_on_a_second_case_reads_no_reference_rows_and_no_batch_status(
    settings: Any, django_capture_on_commit_callbacks: Any
):
    from generation.llm.completion import model_prices
    from generation.services.pipeline import reference

    settings.REFERENCE_CACHE_SECONDS = 60
    for kept in (reference.active_variables, reference.variable_names, reference.active_roles, model_prices):
        kept.forget()
    batch = make_batch()
    first = _statements_per_agent(batch=batch, code="E11.5", on_commit=django_capture_on_commit_callbacks)
    second = _statements_per_agent(batch=batch, code="E11.6", on_commit=django_capture_on_commit_callbacks)

    def reading(statements: dict[str, list[str]], table: str) -> list[str]:
        return [agent for agent, sqls in statements.items() if any(f'FROM "{table}"' in sql for sql in sqls)]

    assert reading(first, "generation_qualityvariable")
    assert reading(first, "generation_llmmodel")
    for table in REFERENCE_TABLES:
        assert reading(second, table) == [], table
    # The claim reads the batch with the step; the single attempt of each step reads it no more.
    assert reading(second, "generation_generationbatch") == []


def _statements_per_agent(*, batch: Any, code: str, on_commit: Any) -> dict[str, list[str]]:
    case = CaseFactory(batch=batch, code=IcdCodeFactory(code=code, chapter="4"), role=None, status=CaseStatus.PLANNED)
    case_start(case=case)
    # Answers made up front: the replay's own reads of the variables are not the step's.
    keys = list(QualityVariable.objects.values_list("key", flat=True))
    outputs = {agent: fake_llm_server.default_output(agent, variable_keys=keys) for agent in AGENTS_IN_ORDER}
    statements: dict[str, list[str]] = {}
    with llm_replay(answers(len(AGENTS_IN_ORDER), **outputs)):
        while step := PipelineStep.objects.filter(case=case, status=StepStatus.PENDING).first():
            with CaptureQueriesContext(connection) as captured, on_commit(execute=True):
                pipeline_step_run(step_id=step.pk, task_id=f"test-{step.pk}")
            statements[step.agent] = [query["sql"] for query in captured]
    assert list(statements) == AGENTS_IN_ORDER
    return statements
