"""Pipeline throughput through real Celery workers on PostgreSQL + Redis, against the local test
server (tests/fake_llm_server.py) in a process of its own.

For each run: the endpoint's concurrency cap is set, the workers are started as the README's
production section starts them (a thread-pool worker on the generation queue, a prefork worker on
the default queue), a batch of `--pairs` codes × 1 pair is created (six LLM calls a pair when the
judge approves), and the run ends when the batch has finished (after a 2-pair warm-up batch, not measured: the
recovery pass each worker runs when it starts, first imports and connections). Figures per run:

- utilization = calls × latency ÷ (wall × cap): 1.0 means the provider's allowed concurrency was
  the only limit; wall is the batch's started_at → finished_at;
- our CPU per call: user + system CPU of the workers (and their children), every PostgreSQL
  process (backends, and those that exited through the postmaster's reaped-children time: an upper
  bound when other databases on the server are busy; `postgres_own_backends` is the lower bound,
  the backends connected to the benchmark's database at its start or end) and redis-server, over
  the run, divided by the calls served. The test server's CPU is not ours.

    python scripts/bench/pipeline.py --caps 12,26,48 --latency 0.5 --pairs 96 --json out.json

Each run also gives the queue delay per step: from the step's message being sent (enqueued_at) to a
worker claiming it (started_at), p50 / p95. `--embedded-pairs N` adds a run on `make run`'s
configuration (SQLite, the filesystem broker, its worker command), where that delay is the broker's.

Needs PostgreSQL (BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432: a database
is created and dropped) and Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/13: its keys
are cleared before and after).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from smoke_run import fresh_postgresql_database, redis_queues_clear, stop_process  # noqa: E402

PYTHON_BIN = Path(sys.executable).parent
MODEL = "bench-model"
READY_SECONDS = 90
WARMUP_PAIRS = 2  # a small batch first, not measured


@contextmanager
def test_server(*, latency: float, pad_bytes: int, fault_rate: float) -> Iterator[str]:
    """The local test server in its own process (its CPU is the provider's, not ours): its URL."""
    port = common.free_port()
    command = [sys.executable, str(common.ROOT / "tests" / "fake_llm_server.py"), "--port", str(port),
               "--latency", str(latency), "--pad-bytes", str(pad_bytes), "--fault-rate", str(fault_rate),
               "--seed", "1", "--model", MODEL, "--distinct-texts"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=common.ROOT, stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout is not None:
            proc.stdout.readline()  # the server prints its base URL once it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def server_stats(url: str) -> dict[str, int]:
    import httpx

    return dict(httpx.get(f"{url}/stats", timeout=10).json())


def endpoint_configure(*, base_url: str, cap: int) -> Any:
    from generation.models import LlmEndpoint, LlmModel

    endpoint, _ = LlmEndpoint.objects.update_or_create(
        name="bench",
        defaults={"base_url": f"{base_url}/v1", "default_model": MODEL, "max_concurrency": cap},
    )
    LlmModel.objects.get_or_create(endpoint=endpoint, name=MODEL)
    return endpoint


def workers_start(*, env: dict[str, str], threads: int, processes: int, log: Path, stack: ExitStack) -> list[int]:
    """The README's production workers: `processes` thread-pool workers on the generation queue
    (`threads` threads each) and one prefork worker on the default queue; their pids, once ready."""
    commands = [
        [str(PYTHON_BIN / "celery"), "-A", "medsynth_site", "worker", "-Q", "generation", "--pool", "threads",
         "--concurrency", str(threads), "--hostname", f"generation{n}@%h", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"]
        for n in range(processes)
    ] + [[str(PYTHON_BIN / "celery"), "-A", "medsynth_site", "worker", "-Q", "default", "--concurrency", "2",
          "--hostname", "default@%h", "--loglevel", "INFO"]]  # fmt: skip
    pids = []
    with log.open("ab") as out:
        for command in commands:
            proc = subprocess.Popen(command, cwd=common.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            stack.callback(stop_process, proc)
            pids.append(proc.pid)
    deadline = time.monotonic() + READY_SECONDS
    while log.read_text(errors="replace").count(" ready.") < len(commands):
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start within {READY_SECONDS} s; see {log}")
        time.sleep(0.5)
    return pids


def embedded_worker_start(*, env: dict[str, str], threads: int, log: Path, stack: ExitStack) -> list[int]:
    """The worker `make run` starts (scripts/run.py), on the embedded SQLite and filesystem broker."""
    spec = importlib.util.spec_from_file_location("make_run", common.ROOT / "scripts" / "run.py")
    if spec is None or spec.loader is None:
        raise SystemExit("scripts/run.py not found")
    make_run = importlib.util.module_from_spec(spec)
    sys.modules["make_run"] = make_run  # its dataclasses look their module up
    spec.loader.exec_module(make_run)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            make_run.worker_command(), cwd=common.ROOT, env={**env, "CELERY_CONCURRENCY": str(threads)}, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    stack.callback(stop_process, proc)
    deadline = time.monotonic() + READY_SECONDS
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start within {READY_SECONDS} s; see {log}")
        time.sleep(0.5)
    return [proc.pid]


def database_backends() -> set[int]:
    """The PostgreSQL server processes serving the benchmark's database (not other databases'
    work on a shared server; the workers keep their connections, so they live through a run)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return {int(row[0]) for row in cursor.fetchall()}


def our_cpu(worker_pids: list[int], backends: set[int]) -> dict[str, float]:
    """CPU seconds so far of the workers, their PostgreSQL backends and Redis (see the module's doc)."""
    workers = {pid for root in worker_pids for pid in common.descendants(root)}
    return {
        "workers": common.cpu_of(workers),
        "postgres": common.cpu_of(common.processes_named("postgres")),
        "postgres_own_backends": common.cpu_of(backends, with_reaped_children=False),
        "redis": common.cpu_of(common.processes_named("redis-server")),
    }


def batch_run(*, codes: list[str], timeout: float) -> tuple[float, str, int]:
    """Create a batch of one pair per code (started through the broker) and wait for it: its
    wall time (started → finished), its final status and its id."""
    from generation.models import GenerationBatch
    from generation.services.batches import BatchRequest, batch_create

    batch = batch_create(request=BatchRequest(codes=codes, pairs_per_code=1, endpoint_name="bench"))
    deadline = time.monotonic() + timeout
    while True:
        batch = GenerationBatch.objects.get(pk=batch.pk)
        if batch.finished_at is not None or time.monotonic() > deadline:
            break
        time.sleep(0.25)  # autocommit: each poll reads the latest committed row
    if batch.finished_at is None or batch.started_at is None:
        raise SystemExit(f"batch {batch.pk} did not finish within {timeout:.0f} s: {batch.status}")
    return (batch.finished_at - batch.started_at).total_seconds(), batch.status, batch.pk


def queue_delays_ms(batch_id: int) -> tuple[float, float]:
    """p50 / p95 of the time from a step's message being sent to a worker claiming it."""
    from generation.models import PipelineStep

    times = PipelineStep.objects.filter(
        case__batch_id=batch_id, enqueued_at__isnull=False, started_at__isnull=False
    ).values_list("enqueued_at", "started_at")
    delays = [
        max(0.0, (started - enqueued).total_seconds() * 1000)
        for enqueued, started in times
        if enqueued is not None and started is not None
    ]
    return common.p50_p95(delays) if delays else (0.0, 0.0)


def one_run(
    *, env: dict[str, str], scratch: Path, cap: int, latency: float, pad_bytes: int, codes: list[str],
    warmup_codes: list[str], embedded: bool = False,
    processes: int, timeout: float,
) -> dict[str, Any]:  # fmt: skip
    with ExitStack() as stack:
        url = stack.enter_context(test_server(latency=latency, pad_bytes=pad_bytes, fault_rate=0.0))
        endpoint_configure(base_url=url, cap=cap)
        threads = -(-cap // processes)
        log = scratch / "workers.log"
        if embedded:
            pids = embedded_worker_start(env=env, threads=threads, log=log, stack=stack)
        else:
            pids = workers_start(env=env, threads=threads, processes=processes, log=log, stack=stack)
        # Warm-up: the recovery pass each worker runs at start, first imports, first connections.
        batch_run(codes=warmup_codes, timeout=timeout)
        served_before = server_stats(url)["served"]
        backends = set() if embedded else database_backends()
        cpu_before = our_cpu(pids, backends)
        wall, status, batch_id = batch_run(codes=codes, timeout=timeout)
        backends |= set() if embedded else database_backends()
        cpu_after = our_cpu(pids, backends)
        delay_p50, delay_p95 = queue_delays_ms(batch_id)
        stats = server_stats(url)
    calls = stats["served"] - served_before
    cpu_ms = {part: round(1000 * (cpu_after[part] - cpu_before[part]) / max(calls, 1), 1) for part in cpu_after}
    ours = ("workers",) if embedded else ("workers", "postgres", "redis")  # embedded: SQLite is in the workers
    cpu = sum(cpu_after[part] - cpu_before[part] for part in ours)
    result = {
        "cap": cap, "latency": latency, "processes": processes, "threads": threads, "pairs": len(codes),
        "calls": calls, "wall_s": round(wall, 2), "status": status, "peak_in_flight": stats["peak_in_flight"],
        "cpu_ms_per_call": round(1000 * cpu / calls, 1) if calls else None, "cpu_ms_per_call_by_part": cpu_ms,
        "utilization": round(calls * latency / (wall * cap), 3) if latency else None,
        "calls_per_s": round(calls / wall, 1), "backends_measured": len(backends),
        "broker": "filesystem (embedded, SQLite)" if embedded else "redis (PostgreSQL)",
        "queue_delay_ms_p50": round(delay_p50, 1), "queue_delay_ms_p95": round(delay_p95, 1),
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    return result


def embedded_run(*, pairs: int, timeout: float) -> dict[str, Any]:
    """One run on `make run`'s configuration, in a process of its own (Django is set up once per
    process, and the production runs used PostgreSQL): zero latency, cap 4 (make run's threads)."""
    with tempfile.TemporaryDirectory(prefix="medsynth-bench-embedded-") as scratch:
        out = Path(scratch) / "embedded.json"
        subprocess.run(
            [sys.executable, __file__, "--embedded-child", str(pairs), "--timeout", str(timeout), "--json", str(out)],
            cwd=common.ROOT, check=True,
        )  # fmt: skip
        return dict(json.loads(out.read_text())[0])


def embedded_child(*, pairs: int, timeout: float) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="medsynth-bench-embedded-data-"))
    common.django_setup(data_dir=str(scratch))
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    codes = [code.code for code in common.synthetic_codes(pairs + WARMUP_PAIRS)]
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["MEDSYNTH_DATA_DIR"] = str(scratch)
    return one_run(
        env=env, scratch=scratch, cap=4, latency=0.0, pad_bytes=0, codes=codes[WARMUP_PAIRS:],
        warmup_codes=codes[:WARMUP_PAIRS], processes=1, timeout=timeout, embedded=True,
    )  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", default="12,26,48", help="endpoint concurrency caps, one run each")
    parser.add_argument("--latency", type=float, default=0.5, help="the test server's seconds per answer")
    parser.add_argument("--pairs", type=int, default=96, help="pairs per run (six calls each)")
    parser.add_argument("--pad-bytes", type=int, default=0, help="extra bytes in each answer")
    parser.add_argument("--processes", type=int, default=1, help="generation worker processes of every run")
    parser.add_argument(
        "--also-processes", default="", help="e.g. 2,4: one more run at the largest cap with that many processes"
    )
    parser.add_argument("--cpu-run", action="store_true", help="also one run at zero latency (cap 12) for CPU/call")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--embedded-pairs", type=int, default=0, help="also a run on the embedded default (SQLite, filesystem broker)"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--embedded-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.embedded_child:
        result = embedded_child(pairs=args.embedded_child, timeout=args.timeout)
        if args.json:
            args.json.write_text(json.dumps([result]))
        return 0
    postgres = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medsynth-bench-pipeline-")))
        database_url = stack.enter_context(fresh_postgresql_database(postgres))
        common.django_setup(data_dir=str(scratch), database_url=database_url, broker_url=redis_url)
        redis_queues_clear(redis_url)
        stack.callback(redis_queues_clear, redis_url)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        caps = [int(cap) for cap in args.caps.split(",")]
        runs = [(cap, args.latency, args.processes) for cap in caps]
        runs += [(max(caps), args.latency, int(more)) for more in args.also_processes.split(",") if more]
        if args.cpu_run:
            runs.append((12, 0.0, args.processes))
        per_run = args.pairs + WARMUP_PAIRS
        codes = [code.code for code in common.synthetic_codes(per_run * len(runs))]
        env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": redis_url,
               "MEDSYNTH_DATA_DIR": str(scratch)}  # fmt: skip
        for n, (cap, latency, processes) in enumerate(runs):
            run_codes = codes[n * per_run : (n + 1) * per_run]  # new codes: no scenario is compared twice
            results.append(
                one_run(env=env, scratch=scratch, cap=cap, latency=latency, pad_bytes=args.pad_bytes,
                        codes=run_codes[WARMUP_PAIRS:], warmup_codes=run_codes[:WARMUP_PAIRS], processes=processes,
                        timeout=args.timeout)
            )  # fmt: skip
        connections.close_all()
    if args.embedded_pairs:
        results.append(embedded_run(pairs=args.embedded_pairs, timeout=args.timeout))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
