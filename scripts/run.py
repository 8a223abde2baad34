#!/usr/bin/env python
"""`make run`: prepare the app, then run web + worker + beat (+ the local model) in the foreground.

Ctrl-C (or SIGTERM) stops every process; if one of them dies, the others are stopped too.
Stopping is gentle with generation: the worker takes no new step and gets STOP_GRACE_SECONDS
(default 30) to finish the running ones, while the local model keeps answering; the steps
still running after that are reported as interrupted, and resume on the next start (the
worker's recovery pass sends them again). Nothing generated is lost: every finished LLM
call and every finished step is already in the database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.local_model import local_model_command, local_model_env  # noqa: E402 - needs ROOT on the path

PYTHON = sys.executable
BIN = Path(PYTHON).parent


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def provider_configured() -> bool:
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("LLM_BASE_URL"))


def worker_command() -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "medsynth_site",
        "worker",
        "--queues",
        "generation,default",
        # LLM steps wait on the network: threads give concurrency without a process each.
        "--pool",
        "threads",
        "--concurrency",
        os.environ.get("CELERY_CONCURRENCY", "4"),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]


def beat_command() -> list[str]:
    # Celery beat runs the recovery pass every PIPELINE_RECOVERY_INTERVAL_SECONDS; exactly one per site.
    return [str(BIN / "celery"), "-A", "medsynth_site", "beat", "--loglevel", "INFO"]


def web_command(host: str, port: str) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "medsynth_site.wsgi",
        "--bind",
        f"{host}:{port}",
        "--workers",
        os.environ.get("WEB_WORKERS", "2"),
        "--threads",
        "4",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "5",
    ]


def wait_for(url: str, seconds: float, procs: list[subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
                return True
        except OSError:
            time.sleep(0.5)
    return False


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # A process group of its own: Ctrl-C in the terminal reaches this script only, which
    # stops the processes in order (the model server answers until the worker is done).
    return subprocess.Popen(command, cwd=ROOT, env=env, process_group=0)


def stop_group(proc: subprocess.Popen[bytes] | None, *, wait: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class StopNow(Exception):
    """A second Ctrl-C: stop without waiting for the running steps."""


def _stop_now(*_: object) -> None:
    raise StopNow


@dataclass
class Processes:
    model: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)  # beat and web

    def all(self) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in (self.model, self.worker, *self.others) if proc is not None]


def worker_stop(worker: subprocess.Popen[bytes], *, grace: float) -> None:
    """Celery's warm shutdown: no new step; the running ones get `grace` seconds to finish."""
    if worker.poll() is not None:
        return
    print(
        f"Stopping: no new step starts; the running ones get up to {grace:.0f} s to finish "
        "(Ctrl-C again stops at once)...",
        flush=True,
    )
    signal.signal(signal.SIGINT, _stop_now)
    try:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=grace)
    except (subprocess.TimeoutExpired, StopNow):
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def shut_down(procs: Processes, *, grace: float) -> None:
    for proc in procs.others:  # nothing of theirs is lost
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    if procs.worker is not None:
        worker_stop(procs.worker, grace=grace)
    for proc in (*procs.others, procs.model):
        stop_group(proc)
    if procs.worker is not None:
        # The steps the worker was still running: reported, and sent again at the next start.
        subprocess.run(
            [PYTHON, "manage.py", "recover_steps", "--release-worker", str(procs.worker.pid)], cwd=ROOT, check=False
        )


def main() -> int:
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    grace = float(os.environ.get("STOP_GRACE_SECONDS", "30"))
    # Plain HTTP on this machine unless the operator says otherwise.
    os.environ.setdefault("SECURE_SSL", "false")
    if host not in ("127.0.0.1", "localhost", "0.0.0.0"):  # noqa: S104 - only compared, never bound here
        os.environ.setdefault("ALLOWED_HOSTS", f"localhost,127.0.0.1,{host}")

    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    manage("load_icd10", "--if-empty")
    manage("ensure_first_admin")
    manage("configure_llm")

    procs = Processes()
    # Ctrl-C and SIGTERM both stop everything, even when started from a shell that ignores
    # SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if not provider_configured():
            print("Starting the local demo model (Gemma 3 270M, llama.cpp)...", flush=True)
            command = local_model_command(
                host=os.environ.get("LOCAL_LLM_HOST", "127.0.0.1"),
                port=os.environ.get("LOCAL_LLM_PORT", "8081"),
                context=os.environ.get("LOCAL_LLM_CONTEXT", "8192"),
            )
            procs.model = start(command, env=local_model_env())
        procs.worker = start(worker_command())
        procs.others = [start(beat_command()), start(web_command(host, port))]
        if wait_for(f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/login/", 60, procs.all()):  # noqa: S104
            print(f"\nMedSynth Studio is running: open http://{host}:{port}/  (Ctrl-C stops it)\n", flush=True)
        while all(proc.poll() is None for proc in procs.all()):
            time.sleep(0.5)
        print("A process exited; stopping the others.", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    finally:
        for stop_signal in (signal.SIGINT, signal.SIGTERM):  # the stop itself is not interrupted
            signal.signal(stop_signal, signal.SIG_IGN)
        shut_down(procs, grace=grace)


if __name__ == "__main__":
    if shutil.which("gunicorn", path=str(BIN)) is None:
        sys.exit("gunicorn is missing: run `make run`, which installs the requirements first.")
    sys.exit(main())
