#!/usr/bin/env python
"""`make loadtest`: simulated reviewers (loadtest/locustfile.py) against the real web server.

    .venv/bin/python loadtest/run.py [--configs postgres,sqlite] [--postgres-users 50]
        [--sqlite-users 10] [--duration 60] [--think-scale 1] [--json PATH] [--keep] (--help: all)

Two configurations, each on a fresh database seeded by loadtest/seed.py, served by gunicorn
on a free loopback port exactly as `make run` starts it (scripts/run.py), and driven by
Locust headless against 127.0.0.1 only:
- PostgreSQL (a database of its own, `medsynth_loadtest`, dropped and created again at
  start; skipped with a message when PostgreSQL cannot be reached), 50 users for 60 s;
- the embedded default, SQLite in a temporary data folder, 10 users for 60 s; the server
  log is searched for "database is locked".
Reviewers arrive at --spawn-rate per second, each logging in as it starts (the ramp-up);
the 60 s are measured once all of them are at work (the steady state), and the ramp-up is
reported apart. Prints requests, failures, p50 and p95 per action for both phases (and for
the review actions alone), the races between reviewers, and checks the targets: 0 failed
requests in either phase and a steady-state p95 <= 300 ms on PostgreSQL, 0 failures and no
"database is locked" on SQLite. The exit
status is 1 when a target is missed. Every option also reads an environment variable
(LOADTEST_CONFIGS, LOADTEST_POSTGRES_USERS, LOADTEST_SQLITE_USERS, LOADTEST_DURATION,
LOADTEST_THINK_SCALE, LOADTEST_DATABASE_URL), so `make loadtest` takes them too.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.shared import ACTIONS, OUTCOMES, OUTCOMES_ENV, PASSWORD_ENV, REVIEW_ACTIONS, THINK_SCALE_ENV  # noqa: E402
from scripts.run import stop_group, wait_for, web_command  # noqa: E402 - the server exactly as `make run` starts it

PYTHON = sys.executable
BIN = Path(PYTHON).parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/medsynth_loadtest"
P95_TARGET_MS = 300
# Variables of the surrounding shell (or .env) that must not reach the server under test.
OUTER_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "OPENAI_API_KEY", "LLM_BASE_URL", "HOST", "PORT")
DATABASE_LOCKED = "database is locked"
SERVER_ERROR = re.compile(r'" 5\d\d ')


@dataclass(frozen=True)
class Configuration:
    name: str
    users: int
    database_url: str = ""  # empty: the embedded SQLite default


@dataclass
class Figures:
    name: str
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass
class RunResult:
    configuration: str
    users: int
    seconds: int
    web_workers: str
    skipped: str = ""
    actions: list[Figures] = field(default_factory=list)  # the steady state, all users at work
    ramp_up: list[Figures] = field(default_factory=list)  # while the users arrive and log in
    review: Figures | None = None  # the review actions alone, without logging in
    total: Figures | None = None
    requests_per_second: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    database_locked: int = 0
    server_errors: int = 0
    failure_messages: list[str] = field(default_factory=list)
    target: str = ""
    target_met: bool = True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_recreate(database_url: str) -> str:
    """Drop and create the load test's own database; the reason when that is impossible."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if "loadtest" not in name:
        return f"refusing to drop {name!r}: the load test's database name must contain 'loadtest'"
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=3) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        return f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432} ({error})".strip()
    return ""


def server_environment(configuration: Configuration, data_dir: Path, think_scale: float) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in OUTER_VARIABLES}
    env |= {
        "MEDSYNTH_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "medsynth_site.settings",
        "SECURE_SSL": "false",  # plain HTTP on loopback, as `make run` serves it
        PASSWORD_ENV: secrets.token_urlsafe(16),
        OUTCOMES_ENV: str(data_dir / "outcomes.json"),
        THINK_SCALE_ENV: str(think_scale),
    }
    if configuration.database_url:
        env["DATABASE_URL"] = configuration.database_url
    return env


def locust_command(*, base: str, users: int, args: argparse.Namespace, csv_prefix: Path) -> list[str]:
    return [
        str(BIN / "locust"),
        "--locustfile", str(ROOT / "loadtest" / "locustfile.py"),
        "--headless",
        "--users", str(users),
        "--spawn-rate", str(args.spawn_rate),
        "--run-time", f"{ramp_up_seconds(users, args.spawn_rate) + args.duration}s",
        "--reset-stats",  # the figures of the steady state only; the locustfile keeps the ramp-up's
        "--stop-timeout", str(args.stop_timeout),
        "--host", base,
        "--only-summary",
        "--csv", str(csv_prefix),
    ]  # fmt: skip


def ramp_up_seconds(users: int, spawn_rate: float) -> int:
    return math.ceil(users / spawn_rate)


def _milliseconds(value: str) -> float | None:
    return None if value in ("", "N/A") else float(value)


def stats_read(csv_prefix: Path) -> tuple[list[Figures], Figures | None, float]:
    """Per action and overall figures from Locust's CSV, and the overall requests per second."""
    actions: list[Figures] = []
    total, rate = None, 0.0
    with Path(f"{csv_prefix}_stats.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            figures = Figures(
                name="all requests" if row["Name"] == "Aggregated" else row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                p50_ms=_milliseconds(row["50%"]),
                p95_ms=_milliseconds(row["95%"]),
            )
            if row["Name"] == "Aggregated":
                total, rate = figures, float(row["Requests/s"])
            elif figures.requests:
                actions.append(figures)
    order = {name: index for index, name in enumerate(ACTIONS)}
    actions.sort(key=lambda figures: order.get(figures.name, len(order)))
    return actions, total, rate


def failures_read(csv_prefix: Path) -> list[str]:
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [f"{row['Occurrences']} x {row['Name']}: {row['Error']}" for row in csv.DictReader(handle)]


def seed(env: dict[str, str], *, clinicians: int, cases_per_clinician: int) -> None:
    command = [PYTHON, str(ROOT / "loadtest" / "seed.py"), "--clinicians", str(clinicians)]
    command += ["--cases-per-clinician", str(cases_per_clinician)]
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def serve_and_load(configuration: Configuration, env: dict[str, str], data_dir: Path, args: argparse.Namespace) -> Path:
    """Start gunicorn, run Locust against it, stop gunicorn; returns the CSV prefix."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    csv_prefix = data_dir / "locust"
    with (data_dir / "server.log").open("wb") as server_log, (data_dir / "locust.log").open("wb") as locust_log:
        server = subprocess.Popen(
            web_command("127.0.0.1", str(port)),
            cwd=ROOT,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            process_group=0,  # stopped as a group, as `make run` stops it
        )
        try:
            if not wait_for(f"{base}/login/", 60, [server]):
                raise RuntimeError(f"gunicorn did not serve {base}/login/; see {data_dir / 'server.log'}")
            print(
                f"{configuration.name}: {configuration.users} reviewers for {args.duration} s against {base} ...",
                flush=True,
            )
            command = locust_command(base=base, users=configuration.users, args=args, csv_prefix=csv_prefix)
            timeout = args.duration + args.stop_timeout + 120
            subprocess.run(command, cwd=ROOT, env=env, stdout=locust_log, stderr=subprocess.STDOUT, timeout=timeout)
        finally:
            stop_group(server)
    if not Path(f"{csv_prefix}_stats.csv").exists():
        tail = (data_dir / "locust.log").read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        raise RuntimeError("Locust wrote no figures; its last lines:\n" + "\n".join(tail))
    return csv_prefix


def percentile(times: list[float], share: float) -> float | None:
    """Nearest-rank percentile."""
    if not times:
        return None
    ordered = sorted(times)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def figures_of(name: str, times: list[float], failures: int) -> Figures:
    return Figures(name, len(times), failures, percentile(times, 0.5), percentile(times, 0.95))


def review_figures(times: list[float], actions: list[Figures]) -> Figures:
    failures = sum(figures.failures for figures in actions if figures.name in REVIEW_ACTIONS)
    return figures_of("review actions", times, failures)


def ramp_up_figures(ramp_up: dict[str, dict[str, Any]]) -> list[Figures]:
    """The ramp-up's figures per action, in the table's order, and for all its requests."""
    order = {name: index for index, name in enumerate(ACTIONS)}
    rows = [figures_of(name, entry["times_ms"], entry["failures"]) for name, entry in ramp_up.items()]
    rows.sort(key=lambda figures: order.get(figures.name, len(order)))
    every_time = [time for entry in ramp_up.values() for time in entry["times_ms"]]
    failures = sum(entry["failures"] for entry in ramp_up.values())
    return [*rows, figures_of("all requests", every_time, failures)] if rows else []


def result_collect(result: RunResult, data_dir: Path, csv_prefix: Path) -> RunResult:
    result.actions, result.total, result.requests_per_second = stats_read(csv_prefix)
    result.failure_messages = failures_read(csv_prefix)
    record = json.loads((data_dir / "outcomes.json").read_text(encoding="utf-8"))
    result.outcomes = record["outcomes"]
    result.review = review_figures(record["review_times_ms"], result.actions)
    result.ramp_up = ramp_up_figures(record["ramp_up"])
    server_log = (data_dir / "server.log").read_text(encoding="utf-8", errors="replace")
    result.database_locked = server_log.count(DATABASE_LOCKED)
    result.server_errors = len(SERVER_ERROR.findall(server_log))
    return result


def latency_target_met(figures: Figures | None) -> bool:
    p95 = figures.p95_ms if figures else None
    return figures is not None and figures.failures == 0 and p95 is not None and p95 <= P95_TARGET_MS


def target_check(result: RunResult) -> RunResult:
    ramp_up_failures = sum(figures.failures for figures in result.ramp_up if figures.name != "all requests")
    if result.configuration == "PostgreSQL":
        result.target = f"0 failed requests and a steady-state p95 <= {P95_TARGET_MS} ms"
        result.target_met = latency_target_met(result.total) and ramp_up_failures == 0
    else:
        result.target = f'0 failed requests and no "{DATABASE_LOCKED}"'
        steady_failures = result.total.failures if result.total is not None else 1
        result.target_met = steady_failures == 0 and ramp_up_failures == 0 and result.database_locked == 0
    return result


def configuration_run(configuration: Configuration, args: argparse.Namespace) -> RunResult:
    result = RunResult(
        configuration=configuration.name,
        users=configuration.users,
        seconds=args.duration,
        web_workers=os.environ.get("WEB_WORKERS", "2"),
    )
    if configuration.database_url:
        result.skipped = postgres_recreate(configuration.database_url)
        if result.skipped:
            return result
    data_dir = Path(tempfile.mkdtemp(prefix=f"medsynth-loadtest-{configuration.name.lower()}-"))
    try:
        env = server_environment(configuration, data_dir, args.think_scale)
        seed(env, clinicians=configuration.users, cases_per_clinician=args.cases_per_user)
        csv_prefix = serve_and_load(configuration, env, data_dir, args)
        return target_check(result_collect(result, data_dir, csv_prefix))
    finally:
        if args.keep:
            print(f"Kept the data folder (database, server and Locust logs): {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def report_print(result: RunResult) -> None:
    title = f"{result.configuration}: gunicorn {result.web_workers} workers x 4 threads, {result.users} users, "
    print(f"\n{title}{result.seconds} s")
    if result.skipped:
        print(f"  skipped: {result.skipped}")
        return
    print(f"  ramp-up, {result.users} users arriving and logging in:")
    figures_print(result.ramp_up)
    print(f"  steady state, {result.users} users at work for {result.seconds} s:")
    figures_print([*result.actions, *(row for row in (result.review, result.total) if row is not None)])
    print(f"  throughput: {result.requests_per_second:.1f} requests/s")
    races = ", ".join(f"{result.outcomes.get(name, 0)} {name}" for name in OUTCOMES)
    print(f"  races between two reviewers (valid answers, not failures): {races}")
    print(f'  server log: {result.database_locked} "{DATABASE_LOCKED}", {result.server_errors} responses 5xx')
    for message in result.failure_messages:
        print(f"  failure: {message}")
    print(f"  target ({result.target}): {'met' if result.target_met else 'MISSED'}")
    if result.review is not None and result.configuration == "PostgreSQL":
        verdict = "met" if latency_target_met(result.review) else "missed"
        print(f"  the same target for the review actions alone, without logging in: {verdict}")


def figures_print(rows: list[Figures]) -> None:
    print(f"    {'action':<22} {'requests':>9} {'failures':>9} {'p50 ms':>7} {'p95 ms':>7}")
    for figures in rows:
        print(
            f"    {figures.name:<22} {figures.requests:>9} {figures.failures:>9} "
            f"{_ms(figures.p50_ms):>7} {_ms(figures.p95_ms):>7}"
        )


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=os.environ.get("LOADTEST_CONFIGS", "postgres,sqlite"))
    parser.add_argument("--postgres-users", type=int, default=_env_int("LOADTEST_POSTGRES_USERS", 50))
    parser.add_argument("--sqlite-users", type=int, default=_env_int("LOADTEST_SQLITE_USERS", 10))
    parser.add_argument("--duration", type=int, default=_env_int("LOADTEST_DURATION", 60), help="seconds")
    parser.add_argument("--spawn-rate", type=float, default=2, help="users arriving (and logging in) per second")
    parser.add_argument(
        "--stop-timeout", type=int, default=0, help="seconds a reviewer may take to finish the item at hand at the end"
    )
    parser.add_argument("--think-scale", type=float, default=float(os.environ.get("LOADTEST_THINK_SCALE", "1")))
    parser.add_argument("--cases-per-user", type=int, default=40)
    parser.add_argument("--database-url", default=os.environ.get("LOADTEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders and logs")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    chosen = {name.strip() for name in args.configs.split(",")}
    configurations = [
        *([Configuration("PostgreSQL", args.postgres_users, args.database_url)] if "postgres" in chosen else []),
        *([Configuration("SQLite", args.sqlite_users)] if "sqlite" in chosen else []),
    ]
    started = time.strftime("%Y-%m-%d %H:%M")
    results = [configuration_run(configuration, args) for configuration in configurations]
    print(f"\nLoad test of {started}, on {os.cpu_count()} CPUs (Locust runs on the same machine)")
    for result in results:
        report_print(result)
    if args.json:
        args.json.write_text(json.dumps([asdict(result) for result in results], indent=2), encoding="utf-8")
    return 0 if all(result.target_met for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
