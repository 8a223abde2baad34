"""`make bench`: every throughput and scale figure of MedSynth Studio, printed as a table and
written to docs/PERFORMANCE.md (method, machine, figures, date, targets).

Each part runs in a process of its own (scripts/bench/*.py, whose docs say how it measures):

1. pipeline: utilization at each cap with latency 0.5 s, and our CPU per LLM call at zero latency,
   through real Celery workers on PostgreSQL + Redis (pipeline.py);
2. planning: plan and enqueue a 10,000-case batch; batch bookkeeping per step at 100 vs 10,000
   cases (planning.py, on the embedded default: SQLite + the filesystem broker);
3. review screens at 1,000 / 10,000 cases on PostgreSQL: p50 / p95 and SQL statements (review_pages.py);
4. export: time and peak memory per format (scripts/benchmark_export.py, small).

Defaults finish in about 10 minutes on 2 cores; --quick is a short run for trying it out.
PostgreSQL: BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432, a database is
created and dropped per part); Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from smoke_run import fresh_postgresql_database  # noqa: E402

HERE = Path(__file__).resolve().parent
DOC = common.ROOT / "docs" / "PERFORMANCE.md"
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
TARGET_UTILIZATION = {12: 0.9, 26: 0.85, 48: 0.75}
TARGET_CPU_MS, TARGET_PLAN_S, TARGET_PAGE_P95_MS = 15.0, 10.0, 100.0


def run_part(name: str, command: list[str], out: Path) -> Any:
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, *command, "--json", str(out)], cwd=common.ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"{name} failed")
    return json.loads(out.read_text())


def export_table(pairs: int) -> str:
    print(f"== export: {pairs} pairs", flush=True)
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "scripts/benchmark_export.py", "--pairs", str(pairs)], cwd=common.ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True,
    )  # fmt: skip
    return "\n".join(line for line in done.stdout.splitlines() if line.strip())


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def pipeline_section(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    columns = ["cap", "worker processes × threads", "pairs", "calls", "wall s", "calls/s", "peak in flight",
               "queue delay p50 / p95 ms", "utilization", "target"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    targets = []
    embedded = [run for run in runs if run["broker"].startswith("filesystem")]
    runs = [run for run in runs if run not in embedded]
    for run in runs:
        if run["utilization"] is None:
            continue
        target = TARGET_UTILIZATION.get(run["cap"])
        lines.append(
            f"| {run['cap']} | {run['processes']} × {run['threads']} | {run['pairs']} | {run['calls']} | "
            f"{run['wall_s']} | {run['calls_per_s']} | {run['peak_in_flight']} | "
            f"{run['queue_delay_ms_p50']} / {run['queue_delay_ms_p95']} | {run['utilization']:.2f} | "
            f"≥ {target} {met(run['utilization'] >= target) if target else ''} |"
        )
        if target and run["processes"] == 1:
            targets.append(f"utilization ≥ {target} at cap {run['cap']}: {run['utilization']:.2f}, "
                           f"{met(run['utilization'] >= target)}")  # fmt: skip
    for run in runs:
        if run["utilization"] is None:
            parts = ", ".join(f"{part} {ms}" for part, ms in run["cpu_ms_per_call_by_part"].items())
            lines += ["", f"Our CPU per LLM call at zero latency ({run['calls']} calls, cap {run['cap']}, "
                      f"{run['calls_per_s']} calls/s): **{run['cpu_ms_per_call']} ms** "
                      f"(target ≤ {TARGET_CPU_MS:.0f} ms); by part, ms per call: {parts}."]  # fmt: skip
            targets.append(f"≤ {TARGET_CPU_MS:.0f} ms CPU per call: {run['cpu_ms_per_call']} ms, "
                           f"{met(run['cpu_ms_per_call'] <= TARGET_CPU_MS)}")  # fmt: skip
    for run in embedded:
        lines += ["", f"The embedded default (`make run`'s worker command: SQLite, the filesystem broker, "
                  f"{run['threads']} threads, zero latency, {run['pairs']} pairs): **{run['queue_delay_ms_p50']} ms** "
                  f"per step at the median ({run['queue_delay_ms_p95']} ms p95) between a step's message being sent "
                  "and a worker claiming it (the broker's delay when there are no more pairs than threads); "
                  f"{run['calls']} calls in {run['wall_s']} s, {run['cpu_ms_per_call']} ms of worker CPU "
                  "per call."]  # fmt: skip
    return lines, targets


def planning_section(plan: dict[str, Any]) -> tuple[list[str], list[str]]:
    lines = [
        f"| {plan['cases']:,}-case batch ({plan['database']}) | seconds |", "| --- | --- |",
        f"| plan (cases bulk-inserted) | {plan['plan_s']} |",
        f"| enqueue (first step of each case, message sent) | {plan['enqueue_s']} |",
        f"| plan and enqueue | {plan['plan_and_enqueue_s']} |", "",
        "| bookkeeping per step (a case leaves generation) | p50 ms | SQL statements |", "| --- | --- | --- |",
        f"| batch of {plan['small_cases']:,} cases | {plan['bookkeeping_small_ms']} | "
        f"{plan['bookkeeping_small_queries']} |",
        f"| batch of {plan['cases']:,} cases | {plan['bookkeeping_big_ms']} | {plan['bookkeeping_big_queries']} |",
    ]  # fmt: skip
    same_queries = plan["bookkeeping_small_queries"] == plan["bookkeeping_big_queries"]
    flat = plan["bookkeeping_big_ms"] <= 1.5 * plan["bookkeeping_small_ms"]  # the same work, within noise
    targets = [
        f"planning {plan['cases']:,} cases ≤ {TARGET_PLAN_S:.0f} s: {plan['plan_and_enqueue_s']} s, "
        f"{met(plan['plan_and_enqueue_s'] <= TARGET_PLAN_S)}",
        f"bookkeeping per step independent of batch size: {plan['bookkeeping_small_ms']} → "
        f"{plan['bookkeeping_big_ms']} ms, {plan['bookkeeping_small_queries']} → {plan['bookkeeping_big_queries']} "
        f"statements, {met(same_queries and flat)}",
    ]
    return lines, targets


def review_section(sizes: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    header = " | ".join(f"{size['cases']:,}: p50 / p95 ms (SQL)" for size in sizes)
    lines = [f"| page | {header} |", "| --- |" + " --- |" * len(sizes)]
    for page in sizes[0]["pages"]:
        cells = " | ".join(
            f"{size['pages'][page]['p50_ms']} / {size['pages'][page]['p95_ms']} ({size['pages'][page]['queries']})"
            for size in sizes
        )
        lines.append(f"| {page} | {cells} |")
    largest = sizes[-1]
    worst = max(largest["pages"].items(), key=lambda item: item[1]["p95_ms"])
    grown = [page for page in sizes[0]["pages"] if len({size["pages"][page]["queries"] for size in sizes}) > 1]
    targets = [
        f"every review page p95 ≤ {TARGET_PAGE_P95_MS:.0f} ms at {largest['cases']:,} cases (the target is at 50,000): "
        f"worst {worst[0]} {worst[1]['p95_ms']} ms, {met(worst[1]['p95_ms'] <= TARGET_PAGE_P95_MS)}",
        f"review query counts independent of the data: {met(not grown)}"
        + (f" (grow: {', '.join(grown)})" if grown else ""),
    ]  # fmt: skip
    return lines, targets


def document(*, args: argparse.Namespace, machine: dict[str, str], load_before: str, parts: dict[str, Any],
             minutes: float) -> str:  # fmt: skip
    pipeline_lines, pipeline_targets = pipeline_section(parts["pipeline"])
    planning_lines, planning_targets = planning_section(parts["planning"])
    review_lines, review_targets = review_section(parts["review"])
    targets = pipeline_targets + planning_targets + review_targets
    return "\n".join([
        "# Performance", "",
        f"Measured by `make bench` (scripts/bench/run.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"in {minutes:.1f} min.",
        f"Machine: {machine['cpu']}, {machine['memory']} RAM, Python {machine['python']}; load average "
        f"(1 / 5 / 15 min) {load_before} before the run and {common.machine()['load']} after it. The machine is "
        "shared, so figures from a loaded machine are pessimistic.",
        f"Options: `{' '.join(sys.argv[1:]) or '(defaults)'}`.", "",
        "## Targets", "", *[f"- {target}" for target in targets], "",
        "## Pipeline: utilization and our CPU per LLM call", "",
        f"A batch of {args.pairs} codes × 1 pair (six calls a pair) against the local test server "
        f"(tests/fake_llm_server.py, its own process) answering in {args.latency} s, with the endpoint's concurrency "
        "cap set to `cap`; real Celery workers started as the README's production section says (a thread-pool "
        "worker on the `generation` queue with `cap` threads, a prefork worker on `default`), PostgreSQL and Redis "
        "on this machine. Utilization = calls × latency ÷ (wall × cap), wall = the batch's start to its finish. "
        "Our CPU = user + system CPU of the workers, every PostgreSQL process and redis-server over the run "
        "(from /proc), divided by the calls served; the test server's CPU is the provider's. PostgreSQL is "
        "shared with other work on this machine, so its share is an upper bound. Each run starts with a "
        "2-pair warm-up batch that is not measured. Queue delay: from a step's message being sent to a worker "
        "claiming it, which includes waiting for a free thread when more pairs than the cap are under way.", "",
        *pipeline_lines, "",
        "## Planning and bookkeeping", "",
        "scripts/bench/planning.py on the embedded default (SQLite, filesystem broker): `batch_plan` then "
        "`batch_start` (every case's first step written and its message sent); then the bookkeeping of a case "
        "leaving generation (its move and its batch's counters and status), on a small and a large batch.", "",
        *planning_lines, "",
        "## Review screens", "",
        "scripts/bench/review_pages.py: cases seeded with bulk_create (most pairs reviewed, a fifth waiting in final "
        f"review), then each page requested {args.repeat} times as a logged-in admin through Django's test client "
        f"on {parts['review'][0]['database']}. Figures: p50 / p95 ms (SQL statements per request).", "",
        *review_lines, "",
        "## Export", "", "scripts/benchmark_export.py (SQLite, temporary):", "", "```", parts["export"], "```", "",
        "## Not measured yet", "",
        "- distilabel (or another generator) on the same server, for comparison;",
        "- review screens and export at 50,000 cases (`--sizes 1000,10000,50000`, `--export-pairs 50000` run them, "
        "beyond the 10-minute budget);",
        "- note-section save time, import CPU per row, review decision cost at 100 vs 20,000 cases.", "",
    ])  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a try-out in about two minutes")
    parser.add_argument("--caps", default="12,26,48")
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--processes", default="1", help="generation worker processes of every pipeline run")
    parser.add_argument("--also-processes", default="2", help="more runs at the largest cap with this many processes")
    # No more pairs than make run's 4 threads: the queue delay is then the broker's, not a wait for a thread.
    parser.add_argument("--embedded-pairs", type=int, default=4, help="pairs of the embedded-default run")
    parser.add_argument("--planning-cases", type=int, default=10_000)
    parser.add_argument("--sizes", default="1000,10000", help="review screens: cases per size")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--export-pairs", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.planning_cases, args.sizes, args.repeat, args.export_pairs = 24, 1000, "200,1000", 3, 200
    load_before = common.machine()["load"]
    started = time.monotonic()
    parts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="medsynth-bench-") as scratch:
        out = Path(scratch)
        parts["pipeline"] = run_part(
            "pipeline", [str(HERE / "pipeline.py"), "--caps", args.caps, "--latency", str(args.latency),
                         "--pairs", str(args.pairs), "--processes", args.processes,
                         "--also-processes", args.also_processes, "--embedded-pairs", str(args.embedded_pairs),
                         "--cpu-run"], out / "pipeline.json",
        )  # fmt: skip
        parts["planning"] = run_part(
            "planning", [str(HERE / "planning.py"), "--cases", str(args.planning_cases)], out / "planning.json"
        )
        with fresh_postgresql_database(POSTGRES) as database_url:
            parts["review"] = run_part(
                "review screens", [str(HERE / "review_pages.py"), "--sizes", args.sizes, "--repeat", str(args.repeat),
                                   "--database-url", database_url], out / "review.json",
            )  # fmt: skip
        parts["export"] = export_table(args.export_pairs)
    text = document(args=args, machine=common.machine(), load_before=load_before, parts=parts,
                    minutes=(time.monotonic() - started) / 60)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"Written to {args.out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
