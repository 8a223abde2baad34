from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from generation.models import AgentCall, CaseStatus, GenerationBatch, IcdCode
from medsynth_site.celery import app as celery_app
from tests.factories import CaseFactory, IcdCodeFactory
from tests.generation.pipeline_fakes import answers, make_endpoint
from tests.llm_replay import llm_replay, models_response


@pytest.fixture
def eager_celery():
    """Tasks run in-process when enqueued (after commit), as a worker would run them."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.mark.django_db(transaction=True)
def test_generate_waits_for_the_batch_and_prints_a_summary(eager_celery):
    endpoint = make_endpoint()
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    out = StringIO()
    with llm_replay(answers(1 + 6)):
        call_command(
            "generate",
            "--codes",
            "E11.9",
            "--per-code",
            "1",
            "--endpoint",
            endpoint.name,
            "--wait",
            "--poll-seconds",
            "0",
            "--temperature",
            "note_writer=0.3",
            stdout=out,
        )

    text = out.getvalue()
    batch = GenerationBatch.objects.get()
    assert batch.cases.get().status == CaseStatus.PAIR_REVIEW
    assert "1/1 cases settled" in text
    assert "cases done:   1 of 1" in text
    assert "LLM calls:    6 (0 failed)" in text
    assert "tokens:       1200 in, 480 out" in text
    assert AgentCall.objects.filter(case__batch=batch).count() == 6
    writer_call = AgentCall.objects.get(case__batch=batch, agent="note_writer")
    assert writer_call.request_params["temperature"] == 0.3


@pytest.mark.django_db
def test_generate_refuses_an_unknown_code_and_creates_nothing():
    make_endpoint(is_default=True)
    with pytest.raises(CommandError, match="Unknown ICD-10-CM code"):
        call_command("generate", "--codes", "E11.9,ZZZ", stdout=StringIO())
    assert not GenerationBatch.objects.exists()


@pytest.fixture
def ranked_codes():
    # Chapter 4 holds the three most frequent codes; 9 and 10 one each.
    for code, chapter, block, frequency in [
        ("E11.9", "4", "E08-E13", 500),
        ("E10.9", "4", "E08-E13", 400),
        ("E03.9", "4", "E00-E07", 300),
        ("I10", "9", "I10-I1A", 80),
        ("J02.9", "10", "J00-J06", 5),
    ]:
        IcdCodeFactory(code=code, chapter=chapter, block=block, frequency=frequency)


def planned_codes():
    return sorted(GenerationBatch.objects.latest("id").cases.values_list("code__code", "slot"))


@pytest.mark.django_db
def test_generate_stratifies_the_top_n_across_chapters(ranked_codes):
    make_endpoint(is_default=True)
    with llm_replay([models_response(["test-model"])]):
        call_command("generate", "--top", "3", "--stratify", "1", stdout=StringIO())
    # One per chapter: the minimum takes all three (the plain top 3 is chapter 4's three codes).
    assert planned_codes() == [("E11.9", 1), ("I10", 1), ("J02.9", 1)]


@pytest.mark.django_db
def test_generate_filters_the_top_n_by_chapter_and_block(ranked_codes):
    make_endpoint(is_default=True)
    with llm_replay([models_response(["test-model"])]):
        call_command("generate", "--top", "5", "--chapter", "4", "--blocks", "E00-E07", stdout=StringIO())
    assert planned_codes() == [("E03.9", 1)]


@pytest.mark.django_db
def test_generate_tops_up_to_k_approved_pairs_within_the_caps(ranked_codes):
    make_endpoint(is_default=True)
    CaseFactory(code=IcdCode.objects.get(code="E11.9"), status=CaseStatus.APPROVED)
    with llm_replay([models_response(["test-model"])]):
        call_command(
            "generate", "--codes", "E11.9,I10", "--target-approved", "3", "--topup-total", "3", stdout=StringIO()
        )
    # E11.9 lacks 2, I10 lacks 3; 3 in all, one per code per round: E11.9, I10, then E11.9.
    assert planned_codes() == [("E11.9", 1), ("E11.9", 2), ("I10", 1)]
