from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from generation.models import AgentCall, CaseStatus, GenerationBatch
from medsynth_site.celery import app as celery_app
from tests.factories import IcdCodeFactory
from tests.generation.pipeline_fakes import answers, make_endpoint
from tests.llm_replay import llm_replay


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
