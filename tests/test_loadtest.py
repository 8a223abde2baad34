"""`make loadtest` in smoke size: the driver (loadtest/run.py) seeds a fresh SQLite database,
serves it with gunicorn and runs the locustfile with three reviewers for 20 s, each
finishing the item at hand at the end (so a slow machine still sees whole items). The
locustfile follows the screens' URLs, forms and htmx answers; when a screen changes and it
does not, an action fails or stops being reached, and this test says which."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from loadtest.shared import ACTIONS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_every_reviewer_action_runs_under_load_without_a_failure(tmp_path):
    figures_file = tmp_path / "loadtest.json"
    command = [sys.executable, str(ROOT / "loadtest" / "run.py"), "--configs", "sqlite", "--sqlite-users", "3"]
    command += ["--duration", "20", "--stop-timeout", "60", "--think-scale", "0.2", "--cases-per-user", "10"]
    command += ["--json", str(figures_file)]

    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    assert figures_file.exists(), run.stdout + run.stderr
    (sqlite,) = json.loads(figures_file.read_text())
    # Logging in happens while the reviewers arrive (the ramp-up); the rest in the steady state.
    requests = Counter()
    for action in [*sqlite["actions"], *sqlite["ramp_up"]]:
        requests[action["name"]] += action["requests"]
    assert {action: requests[action] for action in ACTIONS if not requests[action]} == {}, run.stdout
    assert (sqlite["total"]["failures"], sqlite["failure_messages"]) == (0, []), run.stdout
    assert sum(action["failures"] for action in sqlite["ramp_up"]) == 0, run.stdout
    assert (sqlite["database_locked"], sqlite["server_errors"]) == (0, 0), run.stdout
    assert run.returncode == 0, run.stdout + run.stderr
