"""Time the choice of in-context examples and the grouped split with example links.

    .venv/bin/python scripts/benchmark_examples.py [--approved 5000] [--pairs 50000]

1. `examples_for_code` (pins, exclusions, demo rule, rotation) against a chapter with
   --approved approved cases, a tenth of them written on a local demo endpoint: what one
   agent step adds before its model call. Throwaway SQLite database (temporary
   MEDSYNTH_DATA_DIR), or PostgreSQL when DATABASE_URL is set (rolled back).
2. `SplitAssigner` at the category level over --pairs pairs on 2,000 codes, with two
   example links per pair (union-find), as the export builds it before writing; prints
   the realised shares, which show how much the links coarsen the split.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
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
        slots = range(start + 1, min(count, start + BULK) + 1)
        cases = Case.objects.bulk_create(
            [Case(batch=batch, code=code, slot=slot, status=CaseStatus.APPROVED) for slot in slots]
        )
        ArtefactVersion.objects.bulk_create(
            ArtefactVersion(case=case, kind=kind, number=1, source="llm_polished", content=content, text=texts[kind])
            for case in cases
            for kind, content in contents.items()
        )
        AgentCall.objects.bulk_create(
            AgentCall(case=case, agent="note_writer", endpoint=demo, endpoint_name=demo.name, request_messages=[])
            for case in cases[::10]
        )
    return code


def _split_with_links(pairs: int) -> None:
    """Codes A00.0-J19.9 (200 categories of 10 codes, 22 chapters); each pair was shown two
    examples, mostly of its own category (as the rotation prefers), one in a hundred from
    another category of its chapter (a category with too few approved cases yet)."""
    codes = [
        CodeCount(code=f"{chr(65 + c // 20)}{c % 20:02d}.{d}", block="", chapter=str(c % 22 + 1), count=pairs // 2000)
        for c in range(200)
        for d in range(10)
    ]
    code_of_case = {case_id: codes[case_id % len(codes)] for case_id in range(pairs)}
    by_category: dict[str, list[int]] = {}
    by_chapter: dict[str, list[int]] = {}
    for case_id, code in code_of_case.items():
        by_category.setdefault(code.code[:3], []).append(case_id)
        by_chapter.setdefault(code.chapter, []).append(case_id)
    rng = random.Random(1)
    links = [
        (case_id, rng.choice(by_chapter[code.chapter] if rng.random() < 0.01 else by_category[code.code[:3]]))
        for case_id, code in code_of_case.items()
        for _ in range(2)
    ]
    started = time.perf_counter()
    assigner = SplitAssigner(
        plan=SplitPlan(mode="grouped", seed=1),
        codes=codes,
        kept_together=links,
        case_codes={case_id: code.code for case_id, code in code_of_case.items()},
    )
    seconds = time.perf_counter() - started
    shares = Counter()
    for code in codes:
        shares[assigner.split_for(code.code, 0)] += code.count
    realised = ", ".join(f"{split} {shares[split] / pairs:.0%}" for split in ("train", "validation", "test"))
    print(f"Grouped split of {pairs:,} pairs with {len(links):,} example links: {seconds:.2f} s")
    if merge := assigner.merge:
        print(
            f"  {merge.groups} category groups merged into {merge.components}, the largest "
            f"{merge.largest_share:.0%} of the pairs; realised {realised}"
        )


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
            endpoint = "demo endpoint" if demo else "real endpoint"
            print(
                f"Examples from {args.approved:,} approved cases of a chapter, for {endpoint}: {per_call:.1f} ms a step"
            )
        transaction.set_rollback(True)
    _split_with_links(args.pairs)


if __name__ == "__main__":
    main()
