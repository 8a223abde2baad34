#!/usr/bin/env python
"""CI smoke tests of the two configurations.

Embedded (default): `make run` on a free port in a fresh data folder, wait for the login
page, log in with the printed password, stop cleanly.

Production (`--production`, run by `make smoke-production`): a virtualenv with requirements.txt
and nothing else (--venv), a new PostgreSQL database and a Redis broker (SMOKE_POSTGRES_URL,
SMOKE_REDIS_URL); the README's production steps (migrate, collectstatic, load_icd10,
configure_llm, create_user), then gunicorn, a separate worker and Celery beat; a small batch
against a local fake OpenAI-compatible server must finish, and its page must say so.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STARTUP_SECONDS = 600
STOP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_login_page(proc: subprocess.Popen[str], base: str) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print("make run exited before serving", file=sys.stderr)
            return False
        try:
            if httpx.get(f"{base}/login/", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(1)
    print("the login page never answered 200", file=sys.stderr)
    return False


def logged_in_page(base: str, *, password: str, path: str = "/") -> httpx.Response | None:
    """Log in as admin and fetch `path`; None when the login failed."""
    with httpx.Client(base_url=base, timeout=10) as client:
        client.get("/login/")
        response = client.post(
            "/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": f"{base}/login/"},
        )
        if response.status_code != 302:
            print(f"login failed: POST {response.status_code}", file=sys.stderr)
            return None
        return client.get(path)


def log_in(base: str, output: str) -> bool:
    match = re.search(r"password: (\S+)", output)
    if not match:
        print("no admin password was printed", file=sys.stderr)
        return False
    home = logged_in_page(base, password=match.group(1))
    if home is None or home.status_code != 200 or "ICD-10-CM catalogue" not in home.text:
        print(f"the home page was not served: {home.status_code if home else 'no login'}", file=sys.stderr)
        return False
    print("smoke test: logged in as the first admin; the home page was served.")
    return True


def stop(proc: subprocess.Popen[str]) -> bool:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        print(f"make run did not stop within {STOP_SECONDS} s of Ctrl-C", file=sys.stderr)
        return False
    print(f"make run stopped cleanly (exit {proc.returncode}).")
    return True


def embedded_smoke() -> int:
    port = free_port()
    env = {
        **os.environ,
        "MEDSYNTH_DATA_DIR": tempfile.mkdtemp(prefix="medsynth-smoke-"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOCAL_LLM_PORT": str(free_port()),
    }
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []

    def pump() -> None:
        for line in proc.stdout or ():
            output.append(line)
            print(f"  | {line}", end="", flush=True)

    threading.Thread(target=pump, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        ok = wait_for_login_page(proc, base) and log_in(base, "".join(output))
    finally:
        stopped = stop(proc)
    return 0 if ok and stopped else 1


# --- The production configuration ------------------------------------------------------


@contextmanager
def fresh_postgresql_database(server_url: str) -> Iterator[str]:
    import psycopg

    name = f"medsynth_smoke_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server_url}/{name}"
    finally:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_queues_clear(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for pattern in ("generation*", "default*", "unacked*", "medsynth:llm:*"):
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)


def production_smoke(venv: Path) -> int:
    """`venv` holds requirements.txt only (`make smoke-production` builds .venv-production)."""
    from tests.fake_llm_server import fake_llm_server

    redis_url = os.environ.get("SMOKE_REDIS_URL", "redis://127.0.0.1:6379/14")
    password = secrets.token_urlsafe(16)
    port = free_port()
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medsynth-production-smoke-")))
        bin_dir = venv.resolve() / "bin"
        database_url = stack.enter_context(
            fresh_postgresql_database(os.environ.get("SMOKE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432"))
        )
        redis_queues_clear(redis_url)
        stack.callback(redis_queues_clear, redis_url)
        llm = stack.enter_context(fake_llm_server())
        env = {
            **{key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")},
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url,
            "MEDSYNTH_DATA_DIR": str(scratch / "data"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECURE_SSL": "false",
            "LLM_BASE_URL": llm.base_url,
            "LLM_MODEL": llm.model,
            "OPENAI_API_KEY": "sk-not-a-real-key",
        }
        python = str(bin_dir / "python")

        def manage(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([python, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0 and args[0] != "generate":
                raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
            return done

        started = time.monotonic()
        for step in (
            ("migrate", "--noinput"),
            ("collectstatic", "--noinput", "--verbosity", "0"),
            ("load_icd10", "--if-empty"),
            ("configure_llm",),
            ("create_user", "admin", "--role", "admin", "--password", password),
        ):
            manage(*step)
        print(f"smoke test: the README's production steps ran in {time.monotonic() - started:.0f} s.")
        log = (scratch / "processes.log").open("wb")
        for command in (
            [str(bin_dir / "gunicorn"), "medsynth_site.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            [str(bin_dir / "celery"), "-A", "medsynth_site", "worker", "-Q", "generation,default", "--pool", "threads",
             "--concurrency", "4", "--loglevel", "INFO"],
            [str(bin_dir / "celery"), "-A", "medsynth_site", "beat", "--loglevel", "INFO"],
        ):  # fmt: skip
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(stop_process, proc)
        if not serving(f"http://127.0.0.1:{port}/login/", seconds=60):
            print("gunicorn did not serve the login page", file=sys.stderr)
            return 1
        generated = manage("generate", "--codes", "J02.9,E11.9", "--per-code", "1", "--wait", "--timeout", "240")
        batch = re.search(r"Batch (\d+) completed", generated.stdout)
        base = f"http://127.0.0.1:{port}"
        page = logged_in_page(base, password=password, path=f"/generation/batches/{batch.group(1)}/") if batch else None
        if batch is None or page is None or page.status_code != 200 or "Completed" not in page.text:
            print("the batch did not finish, or its page does not say so:", file=sys.stderr)
            print(generated.stdout + generated.stderr, file=sys.stderr)
            print((scratch / "processes.log").read_text(errors="replace")[-5000:], file=sys.stderr)
            return 1
        print("smoke test: " + " ".join(line.strip() for line in generated.stdout.splitlines()[-7:-4]))
    print("smoke test: production configuration (requirements.txt only, PostgreSQL + Redis, gunicorn, "
          "worker, beat) finished a batch against the local test server.")  # fmt: skip
    return 0


def serving(url: str, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--production", action="store_true", help="smoke-test the production configuration")
    parser.add_argument(
        "--venv", type=Path, default=ROOT / ".venv-production", help="virtualenv with requirements.txt only"
    )
    args = parser.parse_args(argv)
    return production_smoke(args.venv) if args.production else embedded_smoke()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
