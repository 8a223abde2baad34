"""Benchmark the dataset export: create N approved pairs, export them in every format
and print the time and peak memory of each run.

    .venv/bin/python scripts/benchmark_export.py [--pairs 10000]

Runs against a throwaway SQLite database in a temporary MEDSYNTH_DATA_DIR, or against
PostgreSQL when DATABASE_URL is set (then everything happens in one transaction that is
rolled back, so the database is left as it was). Each export runs twice: once for the
time, once under tracemalloc for the peak of Python allocations (tracemalloc slows the
run, so its time is not reported). Parquet's Arrow buffers live outside Python's heap;
their peak is pyarrow's memory pool maximum.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("DATABASE_URL"):
    os.environ["MEDSYNTH_DATA_DIR"] = tempfile.mkdtemp(prefix="medsynth-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()

import pyarrow as pa  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from generation import rendering  # noqa: E402
from generation.models import ArtefactVersion, Case, CaseStatus, GenerationBatch, IcdCode, code_compact  # noqa: E402
from review.datasets.export import ExportOptions, dataset_export_write  # noqa: E402
from review.datasets.splits import SplitPlan  # noqa: E402
from review.models import ReviewDecision  # noqa: E402

CODES = 500
BULK = 1000


def _note(index: int) -> dict[str, str]:
    dose = 250 + index % 8 * 125
    return {
        "chief_complaint": f"Follow-up visit number {index % 12 + 1} for a chronic condition.",
        "history_of_present_illness": " ".join(
            f"Day {day}: symptoms were {'better' if (index + day) % 3 else 'worse'} after meals." for day in range(25)
        ),
        "subjective": "Reports fatigue, intermittent headaches and poor sleep. " * 6,
        "objective": f"BP {110 + index % 40}/{70 + index % 20}. HR {60 + index % 30}. Lungs clear. " * 4,
        "assessment": "Condition stable with partial response to treatment. " * 5,
        "plan": f"Continue medication {dose} mg twice daily; recheck labs in {index % 6 + 1} weeks. " * 4,
    }


def _dialogue(index: int) -> dict[str, list[dict[str, str]]]:
    lines = [
        ("doctor", "Good morning, how have you been since the last visit?"),
        ("patient", "Mostly fine, but the headaches come back in the afternoon and I sleep badly."),
        ("doctor", f"Your blood pressure today is {110 + index % 40} over {70 + index % 20}."),
        ("patient", "Is that good? I have been taking the tablets every morning and evening."),
    ]
    return {"turns": [{"speaker": speaker, "text": text} for _ in range(8) for speaker, text in lines]}


def _codes() -> list[IcdCode]:
    codes = [f"Y{i // 10:02d}.{i % 10}" for i in range(CODES)]
    rows = [
        IcdCode(
            code=code,
            code_compact=code_compact(code),
            description=f"Bench {i}",
            chapter=str(i % 22 + 1),
            chapter_title=f"Chapter {i % 22 + 1}",
            block="Y00-Y99",
            block_title="Bench",
            depth=2,
            is_billable=True,
        )
        for i, code in enumerate(codes)
    ]
    IcdCode.objects.bulk_create(rows, batch_size=BULK)
    return list(IcdCode.objects.filter(code__startswith="Y", block_title="Bench").order_by("code"))


def approved_pairs_create(count: int) -> None:
    codes = _codes()
    reviewers = [get_user_model().objects.create_user(username=f"bench-reviewer-{i}") for i in range(3)]
    batch = GenerationBatch.objects.create(name="Benchmark", planned_count=count, produced_count=count)
    for start in range(0, count, BULK):
        indexes = range(start, min(count, start + BULK))
        cases = Case.objects.bulk_create(
            [Case(batch=batch, code=codes[i % CODES], slot=i // CODES + 1, status=CaseStatus.APPROVED) for i in indexes]
        )
        versions = []
        for case, i in zip(cases, indexes, strict=True):
            note, dialogue = _note(i), _dialogue(i)
            versions += [
                ArtefactVersion(
                    case=case,
                    kind="note",
                    number=1,
                    source="llm_polished",
                    content=note,
                    text=rendering.note_text(note),
                ),
                ArtefactVersion(
                    case=case,
                    kind="dialogue",
                    number=1,
                    source="llm_polished",
                    content=dialogue,
                    text=rendering.dialogue_text(dialogue),
                ),
            ]
        versions = ArtefactVersion.objects.bulk_create(versions)
        decisions = [
            ReviewDecision(
                case=case,
                stage="pair",
                reviewer=reviewers[(i + offset) % 3],
                action="approve",
                note_version=versions[2 * n],
                dialogue_version=versions[2 * n + 1],
            )
            for n, (case, i) in enumerate(zip(cases, indexes, strict=True))
            for offset in range(1 + i % 2)
        ]
        ReviewDecision.objects.bulk_create(decisions)


def _measure(options: ExportOptions, out_dir: Path) -> tuple[float, float, float, int]:
    start = time.perf_counter()
    result = dataset_export_write(options=options, out=out_dir / f"timed-{options.fmt}-{options.profile}.zip")
    seconds = time.perf_counter() - start
    pool = pa.default_memory_pool()
    pool.release_unused()
    tracemalloc.start()
    dataset_export_write(options=options, out=out_dir / f"traced-{options.fmt}-{options.profile}.zip")
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = (out_dir / f"timed-{options.fmt}-{options.profile}.zip").stat().st_size
    return seconds, peak / 2**20, pool.max_memory() / 2**20, result.rows if size else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite (temporary)"
    with transaction.atomic():
        started = time.perf_counter()
        approved_pairs_create(args.pairs)
        print(f"Created {args.pairs:,} approved pairs in {time.perf_counter() - started:.1f} s on {database}")
        out_dir = Path(tempfile.mkdtemp(prefix="medsynth-bench-out-"))
        split = SplitPlan(mode="grouped", ratios=(0.8, 0.1, 0.1), seed=1)
        print(f"{'format':<8} {'profile':<9} {'rows':>7} {'seconds':>8} {'py peak MiB':>12} {'arrow peak MiB':>15}")
        for profile in ("medsynth", "full"):
            for fmt in ("jsonl", "csv", "parquet"):
                seconds, peak, arrow, rows = _measure(ExportOptions(fmt=fmt, profile=profile, split=split), out_dir)
                print(f"{fmt:<8} {profile:<9} {rows:>7,} {seconds:>8.2f} {peak:>12.1f} {arrow:>15.1f}")
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"Process peak RSS (whole run, incl. data creation): {max_rss:.0f} MiB")
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
