"""Running the app's real processes in tests: a Celery worker and beat, `make run`, the
probe (tests/pipeline_probe.py), each with its own environment, data folder and database.

The processes of one test share an `AppEnvironment`: its data folder (SQLite file and
filesystem broker when no server is configured), or a PostgreSQL database of its own and a
Redis broker. Nothing here uses the test process's own database.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Variables of the surrounding run that must not leak into the processes under test.
OUTER_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "OPENAI_API_KEY", "LLM_BASE_URL", "PORT", "HOST")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, seconds: float, what: str, poll: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {seconds:.0f} s for {what}")
        time.sleep(poll)


@dataclass
class AppEnvironment:
    data_dir: Path
    database_url: str = ""
    broker_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in OUTER_VARIABLES}
        env |= {"MEDSYNTH_DATA_DIR": str(self.data_dir), "DJANGO_SETTINGS_MODULE": "medsynth_site.settings"}
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.broker_url:
            env["CELERY_BROKER_URL"] = self.broker_url
        return env | self.extra

    def run(self, *command: str, timeout: float = 300) -> str:
        result = subprocess.run(
            list(command), cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result.stdout

    def manage(self, *args: str, timeout: float = 300) -> str:
        return self.run(sys.executable, "manage.py", *args, timeout=timeout)

    def probe(self, *args: str) -> dict[str, Any]:
        output = self.run(sys.executable, "-m", "tests.pipeline_probe", *args)
        parsed: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return parsed

    def start(self, command: list[str], *, log: Path) -> subprocess.Popen[bytes]:
        """A process in a group of its own, so a test can kill it with whatever it started."""
        with log.open("ab") as output:
            return subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start_worker(self, *, log: Path, concurrency: int = 4) -> subprocess.Popen[bytes]:
        offset = log.stat().st_size if log.exists() else 0
        worker = self.start(
            [
                str(BIN / "celery"), "-A", "medsynth_site", "worker", "-Q", "generation,default",
                "--pool", "threads", "-c", str(concurrency),
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
            ],
            log=log,
        )  # fmt: skip

        def ready() -> bool:
            if worker.poll() is not None:
                raise AssertionError("the worker exited:\n" + log.read_text(errors="replace")[-3000:])
            return " ready." in log.read_bytes()[offset:].decode(errors="replace")

        try:
            wait_until(ready, seconds=90, what="the Celery worker to start")
        except BaseException:
            kill_group(worker)
            raise
        return worker

    def start_beat(self, *, log: Path) -> subprocess.Popen[bytes]:
        return self.start([str(BIN / "celery"), "-A", "medsynth_site", "beat", "--loglevel", "INFO"], log=log)


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_group(process)


@contextmanager
def postgresql_database(settings_dict: dict[str, Any]) -> Iterator[str]:
    """A new, empty database on the test's PostgreSQL server, dropped afterwards; yields its URL."""
    import psycopg

    name = f"medsynth_proc_{uuid.uuid4().hex[:10]}"
    server = {
        "host": settings_dict.get("HOST") or "127.0.0.1",
        "port": settings_dict.get("PORT") or "5432",
        "user": settings_dict.get("USER") or "",
        "password": settings_dict.get("PASSWORD") or "",
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    credentials = quote(server["user"], safe="") + (
        ":" + quote(server["password"], safe="") if server["password"] else ""
    )
    try:
        yield f"postgresql://{credentials}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_queues_clear(url: str) -> None:
    """Empty the app's queues and kombu's unacknowledged messages on the broker's Redis db, so
    messages of an earlier run (or of killed workers) are neither consumed nor restored later."""
    import redis

    client = redis.Redis.from_url(url)
    for pattern in ("generation*", "default*", "unacked*", "medsynth:llm:*"):
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)
