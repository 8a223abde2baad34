"""Planning a large batch, and the bookkeeping each step does on its batch.

- plan: batch_plan (the batch's cases, bulk-inserted) then batch_start (each case's first step
  written and its message sent to the broker), for a batch of `--cases` cases;
- bookkeeping: a case leaving generation with its batch's counters and status (which every step
  that moves a case does) in a batch of 100 cases and in the big one: p50 of `--repeat` cases,
  and the SQL statements of one (the transaction's BEGIN and COMMIT included).

The embedded default (SQLite and the filesystem broker, in a temporary folder), or PostgreSQL +
Redis with --database-url / --broker-url (a database of its own: it is left with the rows).

    python scripts/bench/planning.py --cases 10000 --json out.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

PAIRS_PER_CODE = 5


def _batch(name: str) -> Any:
    from generation.models import BatchStatus, GenerationBatch, LlmEndpoint

    endpoint, _ = LlmEndpoint.objects.get_or_create(
        name="bench-planning", defaults={"base_url": "http://127.0.0.1:9/v1", "default_model": "bench-model"}
    )
    return GenerationBatch.objects.create(
        name=name, status=BatchStatus.QUEUED, endpoint=endpoint, model="bench-model",
        config={"pairs_per_code": PAIRS_PER_CODE},
    )  # fmt: skip


def plan_and_start(*, cases: int, prefix: str) -> tuple[Any, float, float]:
    from generation.services.batches import batch_plan, batch_start

    codes = common.synthetic_codes(-(-cases // PAIRS_PER_CODE), prefix=prefix)
    batch = _batch(f"Planning {cases}")
    started = time.perf_counter()
    batch_plan(batch=batch, codes=codes)
    planned = time.perf_counter()
    batch_start(batch_id=batch.pk)
    return batch, planned - started, time.perf_counter() - planned


def bookkeeping(*, batch_id: int, repeat: int) -> tuple[float, int]:
    """p50 ms of one case leaving generation (its move and its batch's counters and status, in one
    transaction), over `repeat` cases of the batch, and the SQL statements of the first."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from generation.models import Case, CaseStatus
    from generation.services.cases import case_transition

    cases = Case.objects.filter(batch_id=batch_id, status=CaseStatus.SCENARIO_GENERATING).order_by("id")
    times, statements = [], []
    for case in cases[:repeat]:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured, transaction.atomic():
            case_transition(case=case, to=CaseStatus.NEEDS_ATTENTION)
        times.append((time.perf_counter() - started) * 1000)
        statements.append(len(captured))
    return common.p50_p95(times)[0], statements[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100, help="the small batch of the bookkeeping comparison")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--broker-url", default="")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="medsynth-bench-planning-")
    try:
        common.django_setup(data_dir=scratch, database_url=args.database_url, broker_url=args.broker_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        small, _, _ = plan_and_start(cases=args.small, prefix="Y")
        big, plan_s, start_s = plan_and_start(cases=args.cases, prefix="X")
        small_ms, small_queries = bookkeeping(batch_id=small.pk, repeat=args.repeat)
        big_ms, big_queries = bookkeeping(batch_id=big.pk, repeat=args.repeat)
        result = {
            "database": connection.vendor, "cases": big.cases.count(), "plan_s": round(plan_s, 2),
            "enqueue_s": round(start_s, 2), "plan_and_enqueue_s": round(plan_s + start_s, 2),
            "small_cases": small.cases.count(), "bookkeeping_small_ms": round(small_ms, 2),
            "bookkeeping_big_ms": round(big_ms, 2), "bookkeeping_small_queries": small_queries,
            "bookkeeping_big_queries": big_queries,
        }  # fmt: skip
        connection.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    common.result_report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
