"""What one review decision costs in a small batch and in a large one.

Two batches of pairs waiting for the final review (`--small` and `--cases` cases, seeded with
bulk inserts), then `--repeat` approvals (review_decision_record, one reviewer each pair) in
each: p50 ms of one approval and its SQL statements. A decision that counts its batch costs more
in the large one; one that touches only its case and its batch's row costs the same.

The embedded default (SQLite in a temporary folder), or PostgreSQL with --database-url (a
database of its own: it is left with the rows).

    python scripts/bench/decisions.py --cases 20000 --json out.json
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

PAIRS_PER_CODE = 10
BULK = 2000
NOTE = {
    "chief_complaint": "Follow-up of a chronic condition.",
    "subjective": "Reports fatigue and poor sleep for three weeks; no fever, no weight loss.",
    "objective": "BP 132/84, HR 76, lungs clear, no oedema.",
    "assessment": "Stable condition with partial response to treatment.",
    "plan": "Continue metformin 500 mg twice daily; recheck HbA1c in 3 months.",
}
DIALOGUE = {
    "turns": [
        {"speaker": "doctor" if i % 2 == 0 else "patient", "text": f"Line {i} of a routine follow-up visit."}
        for i in range(20)
    ]
}


def seed_batch(*, cases: int, prefix: str) -> Any:
    """A completed batch of `cases` pairs waiting for the final review, each with a polished note
    and dialogue, and its counters recounted."""
    from generation import rendering
    from generation.models import ArtefactVersion, BatchStatus, Case, CaseStatus, GenerationBatch
    from generation.services.batch_counters import batch_counters_recount

    codes = common.synthetic_codes(-(-cases // PAIRS_PER_CODE), prefix=prefix)
    batch = GenerationBatch.objects.create(name=f"Decisions {cases}", status=BatchStatus.COMPLETED)
    texts = {"note": (NOTE, rendering.note_text(NOTE)), "dialogue": (DIALOGUE, rendering.dialogue_text(DIALOGUE))}
    for start in range(0, cases, BULK):
        created = Case.objects.bulk_create(
            Case(batch=batch, code=codes[i // PAIRS_PER_CODE], slot=i % PAIRS_PER_CODE + 1,
                 status=CaseStatus.PAIR_REVIEW)
            for i in range(start, min(cases, start + BULK))
        )  # fmt: skip
        ArtefactVersion.objects.bulk_create(
            ArtefactVersion(case=case, kind=kind, number=1, source="llm_polished", content=content, text=text)
            for case in created
            for kind, (content, text) in texts.items()
        )
    batch_counters_recount(batch_id=batch.pk)
    return batch


def approvals(*, batch: Any, repeat: int) -> tuple[float, int]:
    """p50 ms of one approval in the batch, and the SQL statements of the first."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from generation.selectors import current_versions
    from review.models import ReviewAction
    from review.services import review_decision_record

    reviewer, _ = User.objects.get_or_create(username="bench-decisions")
    times, statements = [], []
    for case in batch.cases.order_by("id")[: repeat + 1]:
        seen = {kind: version.number for kind, version in current_versions(case=case).items()}
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            review_decision_record(case=case, reviewer=reviewer, action=ReviewAction.APPROVE, seen=seen, opened_at=None)
        times.append((time.perf_counter() - started) * 1000)
        statements.append(len(captured))
    return common.p50_p95(times[1:])[0], statements[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="medsynth-bench-decisions-")
    try:
        common.django_setup(data_dir=scratch, database_url=args.database_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        small = seed_batch(cases=args.small, prefix="V")
        big = seed_batch(cases=args.cases, prefix="W")
        small_ms, small_queries = approvals(batch=small, repeat=args.repeat)
        big_ms, big_queries = approvals(batch=big, repeat=args.repeat)
        result = {
            "database": connection.vendor, "small_cases": args.small, "cases": args.cases,
            "approval_small_ms": round(small_ms, 2), "approval_big_ms": round(big_ms, 2),
            "approval_small_queries": small_queries, "approval_big_queries": big_queries,
        }  # fmt: skip
        connection.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    common.result_report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
