#!/usr/bin/env python
"""CI smoke test of the embedded default: `make run` on a free port in a fresh data
folder, wait for the login page, log in with the printed password, stop cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 600


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


def log_in(base: str, output: str) -> bool:
    match = re.search(r"password: (\S+)", output)
    if not match:
        print("no admin password was printed", file=sys.stderr)
        return False
    with httpx.Client(base_url=base, timeout=10) as client:
        client.get("/login/")
        response = client.post(
            "/login/",
            data={"username": "admin", "password": match.group(1), "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": f"{base}/login/"},
        )
        home = client.get("/")
    if response.status_code != 302 or home.status_code != 200 or "ICD-10-CM catalogue" not in home.text:
        print(f"login failed: POST {response.status_code}, home {home.status_code}", file=sys.stderr)
        return False
    print("smoke test: logged in as the first admin; the home page was served.")
    return True


def stop(proc: subprocess.Popen[str]) -> bool:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        print("make run did not stop within 30 s of Ctrl-C", file=sys.stderr)
        return False
    print(f"make run stopped cleanly (exit {proc.returncode}).")
    return True


def main() -> int:
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


if __name__ == "__main__":
    sys.exit(main())
