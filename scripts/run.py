#!/usr/bin/env python
"""`make run`: prepare the app, then run web + worker (+ the local model) in the foreground.

Ctrl-C (or SIGTERM) stops every process; if one of them dies, the others are stopped too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
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


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    # Plain HTTP on this machine unless the operator says otherwise.
    os.environ.setdefault("SECURE_SSL", "false")
    if host not in ("127.0.0.1", "localhost", "0.0.0.0"):  # noqa: S104 - only compared, never bound here
        os.environ.setdefault("ALLOWED_HOSTS", f"localhost,127.0.0.1,{host}")

    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    manage("load_icd10", "--if-empty")
    manage("ensure_first_admin")
    manage("configure_llm")

    procs: list[subprocess.Popen[bytes]] = []
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
            procs.append(subprocess.Popen(command, cwd=ROOT, env=local_model_env()))
        procs.append(subprocess.Popen(worker_command(), cwd=ROOT))
        procs.append(subprocess.Popen(web_command(host, port), cwd=ROOT))
        if wait_for(f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/login/", 60, procs):  # noqa: S104
            print(f"\nMedSynth Studio is running: open http://{host}:{port}/  (Ctrl-C stops it)\n", flush=True)
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("A process exited; stopping the others.", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    if shutil.which("gunicorn", path=str(BIN)) is None:
        sys.exit("gunicorn is missing: run `make run`, which installs the requirements first.")
    sys.exit(main())
