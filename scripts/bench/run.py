"""`make bench`: every throughput and scale figure of MedSynth Studio, printed as a table and
written to docs/PERFORMANCE.md (method, machine, figures, date, targets).

Each part runs in a process of its own (scripts/bench/*.py, whose docs say how it measures):

1. pipeline: utilization at each cap with latency 0.5 s, and our CPU per LLM call at zero latency,
   through real Celery workers on PostgreSQL + Redis (pipeline.py);
2. planning: plan and enqueue a 10,000-case batch; batch bookkeeping per step at 100 vs 10,000
   cases (planning.py, on the embedded default: SQLite + the filesystem broker);
3. review screens at 1,000 / 50,000 cases on PostgreSQL, as an admin and as a clinician: p50 / p95 and
   SQL statements (review_pages.py);
4. dataset import: CPU per row (by part) and peak memory at two file sizes (imports.py); export:
   seconds, CPU and peak memory at 2,000 / 10,000 / 50,000 pairs, every format at the smallest (export.py).
5. a 20,000-character note-section save on SQLite and PostgreSQL: p50 / p95, SQL statements and
   where the time goes (note_save.py);
6. one review decision in a batch of 100 and of 20,000 cases on PostgreSQL (decisions.py).

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
TARGET_CPU_MS, TARGET_PLAN_S, TARGET_PAGE_P95_MS, TARGET_SAVE_P95_MS = 15.0, 10.0, 100.0, 200.0
TARGET_EXPORT_S, TARGET_EXPORT_PAIRS, TARGET_IMPORT_CPU_MS = 30.0, 50_000, 5.0
FLAT = 1.25  # memory is "flat" when the largest size peaks at most this many times the smallest


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
    for cap, target in TARGET_UTILIZATION.items():
        at_cap = [run for run in runs if run["cap"] == cap and run["utilization"] is not None]
        if at_cap:
            best = max(at_cap, key=lambda run: run["utilization"])
            reached = best["utilization"]
            targets.append(f"utilization ≥ {target} at cap {cap}: {reached:.2f} "
                           f"({best['processes']} × {best['threads']} threads), {met(reached >= target)}")  # fmt: skip
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


def decisions_section(decision: dict[str, Any]) -> tuple[list[str], list[str]]:
    small, big = decision["small_cases"], decision["cases"]
    lines = [
        f"| one approval ({decision['database']}) | p50 ms | SQL statements |", "| --- | --- | --- |",
        f"| batch of {small:,} cases | {decision['approval_small_ms']} | {decision['approval_small_queries']} |",
        f"| batch of {big:,} cases | {decision['approval_big_ms']} | {decision['approval_big_queries']} |",
    ]  # fmt: skip
    same_queries = decision["approval_small_queries"] == decision["approval_big_queries"]
    flat = decision["approval_big_ms"] <= 1.5 * decision["approval_small_ms"]  # the same work, within noise
    targets = [
        f"a review decision costs the same at {small:,} and {big:,} cases per batch: "
        f"{decision['approval_small_ms']} → {decision['approval_big_ms']} ms, {decision['approval_small_queries']} → "
        f"{decision['approval_big_queries']} statements, {met(same_queries and flat)}"
    ]
    return lines, targets


REVIEW_TARGET_CASES = 50_000
# The pages of each user the review benchmark measures: its JSON key and the table's label.
REVIEW_USERS = (("pages", "admin"), ("clinician_pages", "clinician"))


def review_section(sizes: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    header = " | ".join(f"{size['cases']:,}: p50 / p95 ms (SQL)" for size in sizes)
    lines = [f"| page | {header} |", "| --- |" + " --- |" * len(sizes)]
    measured = []  # (row label, the figures at each size)
    for key, user in REVIEW_USERS:
        for page in sizes[0].get(key, {}):
            measured.append((f"{page} ({user})", [size[key][page] for size in sizes]))
    for label, figures in measured:
        cells = " | ".join(f"{f['p50_ms']} / {f['p95_ms']} ({f['queries']})" for f in figures)
        lines.append(f"| {label} | {cells} |")
    lines += ["", "Seeding: " + ", ".join(f"{size['cases']:,} cases in {size['seed_s']} s" for size in sizes) + "."]
    largest = sizes[-1]["cases"]
    worst_label, worst = max(((label, figures[-1]) for label, figures in measured), key=lambda item: item[1]["p95_ms"])
    grown = [label for label, figures in measured if len({f["queries"] for f in figures}) > 1]
    where = f"{largest:,} cases" + (
        "" if largest == REVIEW_TARGET_CASES else f" (the target is at {REVIEW_TARGET_CASES:,})"
    )
    targets = [
        f"every review page p95 ≤ {TARGET_PAGE_P95_MS:.0f} ms at {where}: worst {worst_label} {worst['p95_ms']} ms, "
        f"{met(worst['p95_ms'] <= TARGET_PAGE_P95_MS)}",
        f"review query counts independent of the data: {met(not grown)}"
        + (f" (grow: {', '.join(grown)})" if grown else ""),
    ]  # fmt: skip
    return lines, targets


def note_save_section(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    lines = ["| database | p50 / p95 ms | our CPU p50 ms | SQL statements | where the time goes, ms per save |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for run in runs:
        parts = ", ".join(f"{part} {ms}" for part, ms in run["breakdown"]["parts_ms"].items())
        lines.append(f"| {run['database']} | {run['p50_ms']} / {run['p95_ms']} | {run['cpu_p50_ms']} | "
                     f"{run['queries']} | {parts} |")  # fmt: skip
    checks = ", ".join(f"{code} {ms}" for code, ms in runs[0]["breakdown"]["checks_ms"].items() if ms >= 0.1)
    lines += ["", f"Checks on {runs[0]['database']}, ms per save (each runs once per artefact): {checks}."]
    targets = [
        f"note-section save (20,000 characters) ≤ {TARGET_SAVE_P95_MS:.0f} ms: p95 "
        + ", ".join(f"{run['p95_ms']} ms on {run['database']}" for run in runs)
        + f", {met(all(run['p95_ms'] <= TARGET_SAVE_P95_MS for run in runs))}"
    ]
    return lines, targets


def _import_section(imports: dict[str, Any]) -> tuple[list[str], list[str]]:
    sizes = imports["sizes"]
    parts = list(sizes[0]["cpu_ms_per_row_by_part"])
    lines = [
        f"| rows ({imports['format']}, {imports['database']}) | file MiB | CPU ms per row | wall s | peak RSS MiB | "
        + " | ".join(f"{part} ms/row" for part in parts)
        + " |",
        "|" + " --- |" * (5 + len(parts)),
    ]
    for size in sizes:
        by_part = " | ".join(str(size["cpu_ms_per_row_by_part"][part]) for part in parts)
        lines.append(f"| {size['rows']:,} | {size['file_mib']} | {size['cpu_ms_per_row']} | {size['wall_s']} | "
                     f"{size['rss_peak_mib']} | {by_part} |")  # fmt: skip
    small, large = sizes[0], sizes[-1]
    cpu = large["cpu_ms_per_row"]
    targets = [
        f"import ≤ {TARGET_IMPORT_CPU_MS:.0f} ms CPU per row: {cpu} ms at {large['rows']:,} rows "
        f"(checks {large['cpu_ms_per_row_by_part']['checks']} ms of it), {met(cpu <= TARGET_IMPORT_CPU_MS)}",
        f"import memory flat in the file size: peak RSS {small['rss_peak_mib']} MiB ({small['file_mib']} MiB file) → "
        f"{large['rss_peak_mib']} MiB ({large['file_mib']} MiB file), "
        f"{met(large['rss_peak_mib'] <= FLAT * small['rss_peak_mib'])}",
    ]
    return lines, targets


def _export_section(export: dict[str, Any]) -> tuple[list[str], list[str]]:
    lines = [f"| pairs ({export['database']}) | format | profile | seconds | CPU s | peak RSS MiB | Python peak MiB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    target_runs = []
    for size in export["sizes"]:
        for run in size["runs"]:
            lines.append(f"| {size['pairs']:,} | {run['format']} | {run['profile']} | {run['seconds']} | "
                         f"{run['cpu_s']} | {run['rss_peak_mib']} | {run.get('py_peak_mib', '')} |")  # fmt: skip
            if (run["format"], run["profile"]) == ("jsonl", "medsynth"):
                target_runs.append((size["pairs"], run))
    (small_pairs, small), (large_pairs, large) = target_runs[0], target_runs[-1]
    at = "" if large_pairs == TARGET_EXPORT_PAIRS else f" (the target is at {TARGET_EXPORT_PAIRS:,})"
    peak = "py_peak_mib" if "py_peak_mib" in large else "rss_peak_mib"
    targets = [
        f"export of {large_pairs:,} pairs to JSONL ≤ {TARGET_EXPORT_S:.0f} s{at}: {large['seconds']} s "
        f"(CPU {large['cpu_s']} s), {met(large['seconds'] <= TARGET_EXPORT_S)}",
        f"export memory flat as the size grows: {peak.replace('_mib', '').replace('_', ' ')} {small[peak]} MiB at "
        f"{small_pairs:,} pairs → {large[peak]} MiB at {large_pairs:,}, {met(large[peak] <= FLAT * small[peak])}",
    ]
    return lines, targets


def dataset_section(imports: dict[str, Any], export: dict[str, Any]) -> tuple[list[str], list[str]]:
    import_lines, import_targets = _import_section(imports)
    export_lines, export_targets = _export_section(export)
    lines = [
        "scripts/bench/imports.py: a synthetic MedSynth CSV of random sentences (about 8 KB a row, no two rows "
        "near-duplicates) imported through `dataset_import_file` (the import page's job and `manage.py "
        "import_dataset`) into SQLite: validation, parsing, the automatic checks of each version, the writes and the "
        "near-duplicate index. CPU = this process's time (SQLite runs in it); by part, the CPU inside each step; "
        "peak RSS of the whole process during the import.", "",
        *import_lines, "",
        "scripts/bench/export.py: approved pairs seeded with bulk_create into SQLite, exported with "
        "`dataset_export_write` (grouped 80/10/10 split, zipped bundle with its card). Peak RSS of the whole process "
        "during the export; Python peak from tracemalloc in a second export.", "",
        *export_lines,
    ]  # fmt: skip
    return lines, import_targets + export_targets


def document(*, args: argparse.Namespace, machine: dict[str, str], load_before: str, parts: dict[str, Any],
             minutes: float) -> str:  # fmt: skip
    pipeline_lines, pipeline_targets = pipeline_section(parts["pipeline"])
    planning_lines, planning_targets = planning_section(parts["planning"])
    review_lines, review_targets = review_section(parts["review"])
    dataset_lines, dataset_targets = dataset_section(parts["imports"], parts["export"])
    save_lines, save_targets = note_save_section(parts["note save"])
    decision_lines, decision_targets = decisions_section(parts["decisions"])
    targets = pipeline_targets + planning_targets + review_targets + decision_targets + save_targets + dataset_targets
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
        "cap set to `cap`; real Celery workers started as the README's production section says (thread-pool "
        "workers on the `generation` queue, `cap` threads in all, one process per core unless the table says "
        "otherwise; a prefork worker on `default`), PostgreSQL and Redis "
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
        f"review), then each page requested {args.repeat} times through Django's test client on "
        f"{parts['review'][0]['database']}, as a logged-in admin and as one of the seed's clinicians (who has "
        "decided many pairs; a clinician has no adjudication queue, agreement or survey results). "
        "Figures: p50 / p95 ms (SQL statements per request).", "",
        *review_lines, "",
        "## Review decisions", "",
        "scripts/bench/decisions.py: two batches of pairs waiting for the final review, seeded with bulk inserts, "
        "then approvals through `review_decision_record` (one reviewer each pair) in each: p50 ms of one approval "
        "and its SQL statements.", "",
        *decision_lines, "",
        "## Note-section save", "",
        "scripts/bench/note_save.py: a case in final review with an ACI-Bench encounter's note and dialogue (read "
        "from ../shared/data at run time); its plan is saved with 20,000 characters "
        f"{args.saves} times through the real view (the screen's htmx request, a logged-in clinician, Django's test "
        "client), each save a little different. Server time includes the version write, the checks, "
        "near-duplicate indexing after the commit and the re-rendered partial.", "",
        *save_lines, "",
        "## Dataset import and export", "", *dataset_lines, "",
        "## Not measured yet", "",
        "- distilabel (or another generator) on the same server, for comparison;",
        "- a 1 GB import (`scripts/bench/imports.py --gigabyte`, a manual run of about an hour).", "",
    ])  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a try-out in about two minutes")
    parser.add_argument("--caps", default="12,26,48")
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--pairs", type=int, default=96)
    # One generation worker process per core, as the README's production section starts them.
    parser.add_argument("--processes", default="2", help="generation worker processes of every pipeline run")
    parser.add_argument("--also-processes", default="1", help="more runs at the largest cap with this many processes")
    # No more pairs than make run's 4 threads: the queue delay is then the broker's, not a wait for a thread.
    parser.add_argument("--embedded-pairs", type=int, default=4, help="pairs of the embedded-default run")
    parser.add_argument("--planning-cases", type=int, default=10_000)
    parser.add_argument("--sizes", default="1000,50000", help="review screens: cases per size")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--export-pairs", default="2000,10000,50000", help="export: approved pairs per size")
    parser.add_argument("--import-rows", default="1000,3000", help="import: rows per file size")
    parser.add_argument("--saves", type=int, default=20, help="note-section saves per database")
    parser.add_argument("--decision-cases", type=int, default=20_000, help="review decisions: the large batch")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.planning_cases, args.sizes, args.repeat = 24, 1000, "200,1000", 3
        args.export_pairs, args.import_rows, args.saves, args.decision_cases = "200,1000", "100,300", 5, 1000
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
        with fresh_postgresql_database(POSTGRES) as database_url:
            parts["decisions"] = run_part(
                "review decisions", [str(HERE / "decisions.py"), "--cases", str(args.decision_cases),
                                     "--database-url", database_url], out / "decisions.json",
            )  # fmt: skip
        parts["note save"] = [run_part("note save (SQLite)", [str(HERE / "note_save.py"), "--saves", str(args.saves)],
                                       out / "save-sqlite.json")]  # fmt: skip
        with fresh_postgresql_database(POSTGRES) as database_url:
            parts["note save"].append(run_part(
                "note save (PostgreSQL)", [str(HERE / "note_save.py"), "--saves", str(args.saves),
                                           "--database-url", database_url], out / "save-postgresql.json",
            ))  # fmt: skip
        parts["imports"] = run_part(
            "dataset import", [str(HERE / "imports.py"), "--rows", args.import_rows], out / "imports.json"
        )
        smallest = args.export_pairs.split(",")[0]
        parts["export"] = run_part(
            "dataset export", [str(HERE / "export.py"), "--pairs", args.export_pairs, "--every-format-at", smallest,
                               "--tracemalloc"], out / "export.json",
        )  # fmt: skip
    text = document(args=args, machine=common.machine(), load_before=load_before, parts=parts,
                    minutes=(time.monotonic() - started) / 60)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"Written to {args.out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
