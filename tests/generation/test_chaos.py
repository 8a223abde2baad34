"""Chaos: a batch run by a real worker that is SIGKILLed at random moments and restarted,
against a local OpenAI-compatible server that fails a fifth of the calls (429 with
Retry-After, 500, timeouts, invalid JSON, truncated replies).

Two configurations: the embedded default (SQLite and the filesystem broker in a fresh data
folder, 30 cases) and production (a fresh PostgreSQL database and Redis, 100 cases; it runs
when the suite itself runs on PostgreSQL + Redis, as in CI). Afterwards every planned case
reached final review or a named terminal state exactly once, no step produced two versions,
no step is left PENDING or RUNNING, and every LLM attempt the server answered has its
agent-call row. Leases, retry waits and the recovery interval are shortened for the run.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.fake_llm_server import TIMEOUT, ServedRequest, fake_llm_server
from tests.processes import (
    AppEnvironment,
    kill_group,
    postgresql_database,
    redis_queues_clear,
    stop_group,
)

pytestmark = pytest.mark.slow

EMBEDDED, PRODUCTION = "embedded", "production"
CLIENT_TIMEOUT = 3  # the endpoint's timeout: a timeout fault costs this much
KILLS = 3
CONCURRENCY = 6
FINISH_SECONDS = 420
# After a kill, the rows of calls the server had just answered may be lost with the worker.
ROW_WRITE_MARGIN = 5.0
FINAL_REVIEW = "pair_review"
NAMED_END_STATES = {FINAL_REVIEW, "failed", "needs_attention"}
# What a case may fail of here: the faults the server injects that outlast the client's
# handling (a truncated reply, invalid JSON twice, transient errors beyond the retry budget).
# Anything else (an internal error, a lost lease) is a bug.
INJECTED_FAILURES = ("was cut off", "still wrong after one repair attempt", "Gave up after")
PAIR_VERSIONS = Counter(
    {
        ("scenario", "llm_raw"): 1,
        ("note", "llm_raw"): 1,
        ("note", "llm_polished"): 1,
        ("dialogue", "llm_raw"): 1,
        ("dialogue", "llm_polished"): 1,
    }
)

on_postgresql_and_redis = settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and not (
    settings.CELERY_BROKER_IS_FILESYSTEM
)


def _app_environment(configuration: str, tmp_path: Path, stack: ExitStack) -> AppEnvironment:
    fast = {
        "PIPELINE_LEASE_SECONDS": "6",
        "PIPELINE_RECOVERY_INTERVAL_SECONDS": "3",
        "PIPELINE_RECOVERY_GRACE_SECONDS": "5",
        "LLM_RETRY_MAX_ATTEMPTS": "6",
        "LLM_RETRY_MAX_WAIT_SECONDS": "20",
        "LLM_CAPACITY_MAX_WAIT_SECONDS": "30",
        "LOG_LEVEL": "INFO",
    }
    if configuration == EMBEDDED:
        return AppEnvironment(data_dir=tmp_path / "data", extra=fast)
    database_url = stack.enter_context(postgresql_database(settings.DATABASES["default"]))
    redis_queues_clear(settings.CELERY_BROKER_URL)
    stack.callback(redis_queues_clear, settings.CELERY_BROKER_URL)
    return AppEnvironment(
        data_dir=tmp_path / "data", database_url=database_url, broker_url=settings.CELERY_BROKER_URL, extra=fast
    )


def _finished(app: AppEnvironment, batch: int, *, within: float = 0) -> bool:
    return bool(app.probe("wait", "--batch", str(batch), "--seconds", str(within))["settled"])


def _kill_worker_at_random_moments(
    app: AppEnvironment, *, batch: int, log: Path, rng: random.Random, stack: ExitStack
) -> list[float]:
    """SIGKILL the worker KILLS times, 1-5 s after each start, and start it again; the last
    one runs until the stack closes."""
    kills: list[float] = []
    worker = app.start_worker(log=log, concurrency=CONCURRENCY)
    stack.callback(stop_group, worker)
    for _ in range(KILLS):
        time.sleep(rng.uniform(1.0, 5.0))
        if _finished(app, batch):
            break
        kill_group(worker, signal.SIGKILL)
        kills.append(time.time())
        worker = app.start_worker(log=log, concurrency=CONCURRENCY)
        stack.callback(stop_group, worker)
    return kills


def _excused(request: ServedRequest, kills: list[float]) -> bool:
    """A call in flight when its worker was killed may have no row: the worker died first."""
    return any(request.started <= kill <= request.finished + ROW_WRITE_MARGIN for kill in kills)


def _check_every_attempt_has_its_row(served: list[ServedRequest], calls: list[dict[str, Any]], kills: list[float]):
    rows_by_request = Counter(call["request_id"] for call in calls if call["request_id"])
    answered = {request.request_id: request for request in served if request.fault != TIMEOUT}
    missing = [rid for rid, request in answered.items() if not rows_by_request[rid] and not _excused(request, kills)]
    assert missing == [], f"{len(missing)} answered LLM attempts have no agent-call row"
    assert set(rows_by_request) <= set(answered), "an agent-call row names a request the server never answered"
    assert max(rows_by_request.values(), default=1) == 1, "an attempt was recorded twice"
    timeouts = [request for request in served if request.fault == TIMEOUT]
    timeout_rows = sum(1 for call in calls if call["error_kind"] == "timeout")
    assert len([r for r in timeouts if not _excused(r, kills)]) <= timeout_rows <= len(timeouts)


def _check_each_case_ended_once(report: dict[str, Any]) -> None:
    statuses = Counter(case["status"] for case in report["cases"])
    assert len(report["cases"]) == report["planned"]
    assert set(statuses) <= NAMED_END_STATES, statuses
    assert statuses[FINAL_REVIEW] > 0, statuses
    unexplained = [
        case
        for case in report["cases"]
        if case["status"] != FINAL_REVIEW and not any(cause in case["error"] for cause in INJECTED_FAILURES)
    ]
    assert unexplained == []
    # One step per agent and case: a duplicate message never made a second attempt.
    assert Counter(step["attempt"] for step in report["steps"]) == {1: len(report["steps"])}
    assert not [step for step in report["steps"] if step["status"] in ("pending", "running")]
    assert report["steps_with_two_versions"] == []
    versions: dict[int, Counter[tuple[str, str]]] = {}
    for version in report["versions"]:
        versions.setdefault(version["case"], Counter())[(version["kind"], version["source"])] += 1
    for case in report["cases"]:
        produced = versions.get(case["id"], Counter())
        if case["status"] == FINAL_REVIEW:
            assert produced == PAIR_VERSIONS, (case, produced)
        else:
            assert max(produced.values(), default=1) == 1, (case, produced)


@pytest.mark.parametrize(
    ("configuration", "codes", "per_code"),
    [
        pytest.param(EMBEDDED, 15, 2, id="embedded-sqlite-filesystem-30-cases"),
        pytest.param(
            PRODUCTION,
            25,
            4,
            id="postgresql-redis-100-cases",
            marks=pytest.mark.skipif(
                not on_postgresql_and_redis,
                reason="runs when the suite runs on PostgreSQL + Redis (DATABASE_URL, CELERY_BROKER_URL), as in CI",
            ),
        ),
    ],
)
def test_a_batch_survives_provider_faults_and_killed_workers(configuration, codes, per_code, tmp_path):
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    print(f"chaos seed {seed} (set CHAOS_SEED to replay it)")
    started = time.monotonic()
    with ExitStack() as stack:
        app = _app_environment(configuration, tmp_path, stack)
        llm = stack.enter_context(
            fake_llm_server(fault_rate=0.2, seed=seed, client_timeout=CLIENT_TIMEOUT, reply_delay=(0.02, 0.6))
        )
        app.manage("migrate", "--noinput")
        planned_codes = app.probe(
            "setup", "--base-url", llm.base_url, "--codes", str(codes), "--timeout", str(CLIENT_TIMEOUT)
        )
        beat = app.start_beat(log=tmp_path / "beat.log")
        stack.callback(stop_group, beat)
        batch = app.probe("launch", "--codes", ",".join(planned_codes["codes"]), "--per-code", str(per_code))["batch"]
        launched = time.monotonic()

        log = tmp_path / "worker.log"
        kills = _kill_worker_at_random_moments(app, batch=batch, log=log, rng=rng, stack=stack)
        if not _finished(app, batch, within=FINISH_SECONDS):
            pytest.fail(f"seed {seed}: {app.probe('progress', '--batch', str(batch))}\n" + log.read_text()[-5000:])
        finished = time.monotonic()
        report = app.probe("report", "--batch", str(batch))
        served = llm.served()

    taken_over = [step for step in report["steps"] if step["claims"] > 1]
    faults = Counter(request.fault or "none" for request in served)
    print(
        f"chaos {configuration}: {len(kills)} kills, cases {dict(Counter(c['status'] for c in report['cases']))}, "
        f"{len(report['steps'])} steps ({len(taken_over)} taken over), {len(served)} LLM requests {dict(faults)}; "
        f"set up in {launched - started:.0f} s, batch done in {finished - launched:.0f} s"
    )
    assert len(kills) >= KILLS, f"the batch finished before {KILLS} kills; kills at {kills}"
    _check_each_case_ended_once(report)
    _check_every_attempt_has_its_row(served, report["calls"], kills)
    # Only the steps a killed worker was running were taken over: the heartbeat kept the
    # leases of the others, slow retries and timeouts included.
    assert len(taken_over) <= len(kills) * CONCURRENCY, taken_over
    assert faults["none"] <= 0.9 * len(served), faults
