"""Where a pipeline step's CPU goes: every step of a small batch run in this process (no
Celery worker, no broker round trip) against the local test server at zero latency, under
cProfile. Prints CPU ms per step by agent, SQL statements per step by agent, and the top
functions by cumulative time.

    python scripts/bench/profile_steps.py --pairs 20 --database-url postgresql://.../db
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
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from pipeline import endpoint_configure, test_server  # noqa: E402


def _backend_pid(connection) -> int | None:  # type: ignore[no-untyped-def]
    """The PostgreSQL server process serving this connection (None on SQLite)."""
    if connection.vendor != "postgresql":
        return None
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--broker-url", default="", help="redis://...: the endpoint limits kept in Redis, as in production")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="CPU figures only")
    parser.add_argument("--sql", action="store_true", help="print the statements of one step per agent")
    parser.add_argument("--dump", type=Path, help="write the cProfile stats here")
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="medsynth-profile-steps-")
    try:
        common.django_setup(data_dir=scratch, database_url=args.database_url, broker_url=args.broker_url)
        from django.core.management import call_command
        from django.db import connection

        from generation.models import PipelineStep, StepStatus
        from generation.services.batches import BatchRequest, batch_create
        from generation.services.pipeline import pipeline_step_run

        call_command("migrate", verbosity=0)
        codes = [code.code for code in common.synthetic_codes(args.pairs + 2)]
        no_messages = mock.patch.multiple(
            "generation.services.pipeline.steps", step_enqueue=lambda *, step_id: True,
            steps_enqueue=lambda *, step_ids: len(step_ids),
        )  # fmt: skip
        with test_server(latency=0.0, pad_bytes=0, fault_rate=0.0) as url, no_messages, \
                mock.patch("generation.services.batches.steps_enqueue", lambda *, step_ids: len(step_ids)):
            endpoint_configure(base_url=url, cap=12)
            profiler = cProfile.Profile(time.process_time)  # CPU, not wall: waits on the database are not ours
            cpu_by_agent: dict[str, list[float]] = defaultdict(list)
            queries_by_agent: dict[str, list[int]] = defaultdict(list)
            backend_cpu = 0.0
            for n, batch_codes in enumerate((codes[:2], codes[2:])):
                batch = batch_create(request=BatchRequest(codes=batch_codes, pairs_per_code=1, endpoint_name="bench"))
                from generation.services.batches import batch_start

                batch_start(batch_id=batch.pk)
                while True:
                    pending = list(
                        PipelineStep.objects.filter(case__batch=batch, status=StepStatus.PENDING).values_list("pk", "agent")
                    )
                    if not pending:
                        break
                    for step_id, agent in pending:
                        backend = _backend_pid(connection)
                        backend_before = common.cpu_of([backend], with_reaped_children=False) if backend else 0.0
                        started = time.process_time()
                        statements: list[str] = []

                        def counted(execute, sql, params, many, context, statements=statements):  # type: ignore[no-untyped-def]
                            statements.append(sql)
                            return execute(sql, params, many, context)

                        with connection.execute_wrapper(counted):
                            if n and args.profile:
                                profiler.enable()
                            pipeline_step_run(step_id=step_id, task_id=f"profile-{step_id}")
                            if n and args.profile:
                                profiler.disable()
                        if n and args.sql and len(cpu_by_agent[agent]) == 0:
                            print(f"--- {agent}: {len(statements)} statements")
                            for sql in statements:
                                print("   ", sql[:220])
                        if n:
                            cpu_by_agent[agent].append((time.process_time() - started) * 1000)
                            if backend:
                                backend_cpu += common.cpu_of([backend], with_reaped_children=False) - backend_before
                            queries_by_agent[agent].append(len(statements))
        print(f"{'agent':<22} {'steps':>5} {'cpu ms/step':>12} {'SQL/step':>9}")
        total_cpu = total_steps = 0.0
        for agent, times in cpu_by_agent.items():
            total_cpu += sum(times)
            total_steps += len(times)
            print(f"{agent:<22} {len(times):>5} {sum(times) / len(times):>12.1f} "
                  f"{sum(queries_by_agent[agent]) / len(times):>9.1f}")  # fmt: skip
        print(f"{'all':<22} {int(total_steps):>5} {total_cpu / max(total_steps, 1):>12.1f}")
        if connection.vendor == "postgresql":
            print(f"PostgreSQL backend CPU per step: {1000 * backend_cpu / max(total_steps, 1):.1f} ms")
        if not args.profile:
            return 0
        stats = pstats.Stats(profiler)
        if args.dump:
            stats.dump_stats(str(args.dump))
        stats.sort_stats(args.sort).print_stats(args.top)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
