"""Time the choice of in-context examples and the grouped split with example links.

    .venv/bin/python scripts/benchmark_examples.py [--approved 5000] [--pairs 50000]

1. `examples_for_code` (pins, exclusions, demo rule, rotation) against a chapter with
   --approved approved cases, a tenth of them written on a local demo endpoint: what one
   agent step adds before its model call. Throwaway SQLite database (temporary
   MEDSYNTH_DATA_DIR), or PostgreSQL when DATABASE_URL is set (rolled back).
2. `SplitAssigner` at the category level over --pairs pairs on 2,000 codes, with three
   example links per pair (union-find), as the export builds it before writing.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("DATABASE_URL"):
    os.environ["MEDSYNTH_DATA_DIR"] = tempfile.mkdtemp(prefix="medsynth-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from generation import rendering  # noqa: E402
from generation.examples import examples_for_code, shipped_examples  # noqa: E402
from generation.models import (  # noqa: E402
    AgentCall,
    ArtefactVersion,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
)
from review.datasets.splits import CodeCount, SplitAssigner, SplitPlan  # noqa: E402

BULK = 1000
LOOKUPS = 100


def _approved_cases(count: int) -> IcdCode:
    code = IcdCode.objects.create(
        code="Y99.9", code_compact="Y999", description="Bench", chapter="20", chapter_title="Bench",
        block="Y90-Y99", block_title="Bench", depth=2, is_billable=True,
    )  # fmt: skip
    demo = LlmEndpoint.objects.create(name="bench-demo", default_model="tiny", is_local_demo=True)
    batch = GenerationBatch.objects.create(name="Benchmark", planned_count=count, produced_count=count)
    example = shipped_examples()[0]
    contents = {"scenario": example.scenario, "note": example.note, "dialogue": example.dialogue}
    texts = {kind: rendering.render(kind, content) for kind, content in contents.items()}
    for start in range(0, count, BULK):
        cases = Case.objects.bulk_create(
            [Case(batch=batch, code=code, slot=i + 1, status=CaseStatus.APPROVED) for i in range(start, min(count, start + BULK))]
        )  # fmt: skip
        ArtefactVersion.objects.bulk_create(
            ArtefactVersion(case=case, kind=kind, number=1, source="llm_polished", content=content, text=texts[kind])
            for case in cases
            for kind, content in contents.items()
        )
        AgentCall.objects.bulk_create(
            AgentCall(case=case, agent="note_writer", endpoint=demo, endpoint_name=demo.name, model="tiny", request_messages=[])
            for case in cases[::10]
        )  # fmt: skip
    return code


def _split_with_links(pairs: int) -> None:
    codes = [
        CodeCount(code=f"C{i // 10:03d}.{i % 10}", block="", chapter=str(i % 22 + 1), count=0) for i in range(2000)
    ]
    counts = [pairs // len(codes)] * len(codes)
    codes = [
        CodeCount(code=c.code, block=c.block, chapter=c.chapter, count=n) for c, n in zip(codes, counts, strict=True)
    ]
    case_codes = {case_id: codes[case_id % len(codes)].code for case_id in range(pairs)}
    rng = random.Random(1)
    links = [(case_id, rng.randrange(pairs)) for case_id in range(pairs) for _ in range(3)]
    started = time.perf_counter()
    assigner = SplitAssigner(
        plan=SplitPlan(mode="grouped", seed=1), codes=codes, kept_together=links, case_codes=case_codes
    )
    seconds = time.perf_counter() - started
    splits = {assigner.split_for(code.code, 0) for code in codes}
    print(f"Grouped split of {pairs:,} pairs, {len(links):,} example links: {seconds:.2f} s ({sorted(splits)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--approved", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=50_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    with transaction.atomic():
        code = _approved_cases(args.approved)
        for demo in (False, True):
            started = time.perf_counter()
            for seed in range(LOOKUPS):
                examples_for_code(code=code, limit=2, seed=f"case:{seed}", for_demo_endpoint=demo)
            per_call = (time.perf_counter() - started) / LOOKUPS * 1000
            endpoint = "a demo endpoint" if demo else "a real endpoint"
            print(
                f"Examples from {args.approved:,} approved cases of a chapter, for {endpoint}: {per_call:.1f} ms a step"
            )
        transaction.set_rollback(True)
    _split_with_links(args.pairs)


if __name__ == "__main__":
    main()
