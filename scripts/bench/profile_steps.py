"""Where a pipeline step's CPU goes: every step of a small batch run in this process (no Celery
worker, no message sent) against the local test server at zero latency. Prints, per agent, our CPU
ms per step and SQL statements per step, the PostgreSQL server's CPU per step (its backend's, from
/proc), and with --profile the top functions under cProfile (CPU time, not wall).

    python scripts/bench/profile_steps.py --pairs 20 --database-url postgresql://.../db \\
        --broker-url redis://127.0.0.1:6379/14 --profile

A 2-pair batch runs first, unmeasured (imports, first connections, prepared statements).
--broker-url keeps the endpoint limits in Redis, as in production; the database (a fresh one is
best) is left with the rows. --sql prints the statements of one step of each agent.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from pipeline import endpoint_configure, test_server  # noqa: E402

WARMUP_PAIRS = 2


@dataclass
class Figures:
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statements: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    backend_cpu_s: float = 0.0

    def steps(self) -> int:
        return sum(len(times) for times in self.cpu_ms.values())


def _backend_pid(connection: Any) -> int | None:
    """The PostgreSQL server process serving this connection (None on SQLite)."""
    if connection.vendor != "postgresql":
        return None
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def _step_run(
    step_id: int, *, agent: str, figures: Figures | None, profiler: cProfile.Profile | None, sql: bool
) -> None:
    from django.db import connection

    from generation.services.pipeline import pipeline_step_run

    statements: list[str] = []

    def counted(execute, sql_text, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql_text)
        return execute(sql_text, params, many, context)

    backend = _backend_pid(connection)
    backend_before = common.cpu_of([backend], with_reaped_children=False) if backend else 0.0
    started = time.process_time()
    with connection.execute_wrapper(counted):
        if profiler:
            profiler.enable()
        pipeline_step_run(step_id=step_id, task_id=f"profile-{step_id}")
        if profiler:
            profiler.disable()
    if figures is None:
        return
    if sql and not figures.cpu_ms[agent]:
        print(f"--- {agent}: {len(statements)} statements", *(f"    {text[:200]}" for text in statements), sep="\n")
    figures.cpu_ms[agent].append((time.process_time() - started) * 1000)
    figures.statements[agent].append(len(statements))
    if backend:
        figures.backend_cpu_s += common.cpu_of([backend], with_reaped_children=False) - backend_before


def batch_run(codes: list[str], **measure: Any) -> None:
    """A batch of one pair per code, every step run here until none is pending."""
    from generation.models import PipelineStep, StepStatus
    from generation.services.batches import BatchRequest, batch_create, batch_start

    batch = batch_create(request=BatchRequest(codes=codes, pairs_per_code=1, endpoint_name="bench"))
    batch_start(batch_id=batch.pk)
    pending = PipelineStep.objects.filter(case__batch=batch, status=StepStatus.PENDING)
    while steps := list(pending.values_list("pk", "agent")):
        for step_id, agent in steps:
            _step_run(step_id, agent=agent, **measure)


def report(figures: Figures, *, vendor: str) -> None:
    print(f"{'agent':<22} {'steps':>5} {'cpu ms/step':>12} {'SQL/step':>9}")
    for agent, times in figures.cpu_ms.items():
        statements = figures.statements[agent]
        print(f"{agent:<22} {len(times):>5} {sum(times) / len(times):>12.1f} {sum(statements) / len(times):>9.1f}")
    steps = max(figures.steps(), 1)
    all_cpu = sum(sum(times) for times in figures.cpu_ms.values())
    print(f"{'all':<22} {steps:>5} {all_cpu / steps:>12.1f}")
    if vendor == "postgresql":
        print(f"PostgreSQL backend CPU per step: {1000 * figures.backend_cpu_s / steps:.1f} ms")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--broker-url", default="", help="redis://...: endpoint limits in Redis, as in production")
    parser.add_argument("--profile", action="store_true", help="also the top functions under cProfile")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--sort", default="cumulative", help="cProfile order: cumulative or tottime")
    parser.add_argument("--sql", action="store_true", help="print the statements of one step per agent")
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="medsynth-profile-steps-")
    try:
        common.django_setup(data_dir=scratch, database_url=args.database_url, broker_url=args.broker_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        codes = [code.code for code in common.synthetic_codes(args.pairs + WARMUP_PAIRS)]
        no_messages = mock.patch("generation.tasks.run_pipeline_step.apply_async")  # steps run here, in order
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        figures = Figures()
        with test_server(latency=0.0, pad_bytes=0, fault_rate=0.0) as url, no_messages:
            endpoint_configure(base_url=url, cap=12)
            batch_run(codes[:WARMUP_PAIRS], figures=None, profiler=None, sql=False)
            batch_run(codes[WARMUP_PAIRS:], figures=figures, profiler=profiler, sql=args.sql)
        report(figures, vendor=connection.vendor)
        if profiler:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
