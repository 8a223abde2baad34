"""`make run` (scripts/run.py) interrupted with Ctrl-C in the middle of a batch, then started
again: it reports the steps it interrupted, and the batch finishes after the restart with
every case generated exactly once.

A provider is configured (LLM_BASE_URL) to a local fake OpenAI-compatible server, so no
llama.cpp build is needed; the app runs embedded (SQLite and the filesystem broker) in a
fresh data folder. The server answers slowly, so steps are running when Ctrl-C comes, and
the grace period is shorter than an answer, so some of them are interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fake_llm_server import fake_llm_server
from tests.processes import ROOT, AppEnvironment, free_port, wait_until

pytestmark = pytest.mark.slow

GRACE_SECONDS = 1
# Replies slow enough that a call under way at Ctrl-C outlasts the grace period.
REPLY_DELAY = (4.0, 5.0)
AGENTS = (
    "scenario_provider",
    "scenario_judge",
    "note_writer",
    "note_polisher",
    "dialogue_generator",
    "dialogue_polisher",
)
PAIR_VERSIONS = {
    ("scenario", "llm_raw"): 1,
    ("note", "llm_raw"): 1,
    ("note", "llm_polished"): 1,
    ("dialogue", "llm_raw"): 1,
    ("dialogue", "llm_polished"): 1,
}


def _ctrl_c(run: subprocess.Popen[bytes], log: Path) -> str:
    """What a terminal does on Ctrl-C (SIGINT to the foreground group); returns what make run said."""
    offset = log.stat().st_size
    os.killpg(run.pid, signal.SIGINT)
    try:
        run.wait(timeout=GRACE_SECONDS + 60)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        pytest.fail("make run did not stop after Ctrl-C:\n" + log.read_text(errors="replace")[-4000:])
    return log.read_bytes()[offset:].decode(errors="replace")


@contextmanager
def _make_run(app: AppEnvironment, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """scripts/run.py, serving; stopped with Ctrl-C at the end unless the block stopped it."""
    with log.open("ab") as output:
        # A session of its own, like a terminal's foreground job: Ctrl-C goes to its group.
        run = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=app.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def serving() -> bool:
            if run.poll() is not None:
                pytest.fail("make run exited:\n" + log.read_text(errors="replace")[-4000:])
            return "MedSynth Studio is running" in log.read_text(errors="replace")

        wait_until(serving, seconds=120, what="make run to serve")
        yield run
    finally:
        if run.poll() is None:
            _ctrl_c(run, log)


def test_ctrl_c_interrupts_the_running_steps_and_the_batch_finishes_after_a_restart(tmp_path):
    with fake_llm_server(reply_delay=REPLY_DELAY) as llm:
        app = AppEnvironment(
            data_dir=tmp_path / "data",
            extra={
                "LLM_BASE_URL": llm.base_url,
                "LLM_MODEL": "fake-model",
                "OPENAI_API_KEY": "sk-not-a-real-key",
                "HOST": "127.0.0.1",
                "PORT": str(free_port()),
                "WEB_WORKERS": "1",
                "CELERY_CONCURRENCY": "4",
                "STOP_GRACE_SECONDS": str(GRACE_SECONDS),
                "PIPELINE_RECOVERY_INTERVAL_SECONDS": "5",
                "PIPELINE_RECOVERY_GRACE_SECONDS": "5",
            },
        )
        app.manage("migrate", "--noinput")
        codes = app.probe("setup", "--base-url", llm.base_url, "--codes", "2")["codes"]
        log = tmp_path / "make-run.log"
        with _make_run(app, log) as run:
            batch = str(app.probe("launch", "--codes", ",".join(codes), "--per-code", "2")["batch"])

            def mid_batch() -> bool:  # several calls answered, and some still waiting for the server
                served = llm.served()
                # A call under way that cannot end within the grace period: it started less than
                # (shortest reply delay - grace - margin) seconds ago.
                fresh = time.time() - (REPLY_DELAY[0] - GRACE_SECONDS - 1.0)
                return sum(1 for call in served if call.finished) >= 6 and any(
                    not call.finished and call.started > fresh for call in served
                )

            wait_until(mid_batch, seconds=120, what="the batch to be under way", poll=0.2)
            stopped = _ctrl_c(run, log)
        assert run.returncode == 0, stopped
        interrupted = re.search(r"(\d+) running step\(s\) were interrupted; they resume on the next start", stopped)
        assert interrupted, stopped
        assert int(interrupted.group(1)) >= 1
        assert app.probe("progress", "--batch", batch)["in_flight"] > 0

        with _make_run(app, log):
            settled = app.probe("wait", "--batch", batch, "--seconds", "180")
        assert settled["settled"], settled
        report = app.probe("report", "--batch", batch)

    assert [case["status"] for case in report["cases"]] == ["pair_review"] * 4
    assert {step["status"] for step in report["steps"]} == {"succeeded"}
    assert Counter(step["agent"] for step in report["steps"]) == dict.fromkeys(AGENTS, 4)
    per_case: dict[int, Counter[tuple[str, str]]] = {}
    for version in report["versions"]:
        per_case.setdefault(version["case"], Counter())[(version["kind"], version["source"])] += 1
    assert all(produced == PAIR_VERSIONS for produced in per_case.values()), per_case
    assert any(step["claims"] > 1 for step in report["steps"])  # the interrupted steps ran again
