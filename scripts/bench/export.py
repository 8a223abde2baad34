"""Dataset export at several sizes: seconds, CPU and peak memory per format and profile.

Approved pairs are seeded with bulk_create (each with one or two approving reviewers, a note of
about 2 KB and a 32-turn dialogue), then exported with `dataset_export_write`, the service behind
the export page's job and `manage.py export_dataset` (grouped 80/10/10 split, zipped bundle with
its card). Sizes run in ascending order, the pairs of the next size added to those already there.

- seconds: wall time of the export; CPU: time.process_time() (SQLite runs in this process);
- memory: the process's peak RSS during the export (VmHWM, reset to the current RSS before each
  run through /proc/self/clear_refs, so Arrow's buffers count too), and with --tracemalloc the peak of Python
  allocations (a second export: tracemalloc slows it, so its time is not reported).

    python scripts/bench/export.py --pairs 2000,10000,50000 --every-format-at 2000 --tracemalloc --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from imports import rss_peak, rss_peak_reset  # noqa: E402

CODES = 500
BULK = 1000
EVERY_RUN = ("jsonl:medsynth", "csv:medsynth", "parquet:medsynth", "jsonl:full", "csv:full", "parquet:full")


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


def approved_pairs_create(count: int, *, start: int = 0, codes: list[Any] | None = None) -> list[Any]:
    """Pairs number `start` to `start + count` (a batch of their own), approved; returns the codes,
    to pass to the next call."""
    from django.contrib.auth import get_user_model

    from generation import rendering
    from generation.models import ArtefactVersion, Case, CaseStatus, GenerationBatch
    from review.models import ReviewDecision

    codes = codes or common.synthetic_codes(CODES, prefix="Y")
    users = get_user_model().objects
    reviewers = [users.get_or_create(username=f"bench-reviewer-{i}")[0] for i in range(3)]
    batch = GenerationBatch.objects.create(name=f"Benchmark from {start}", planned_count=count, produced_count=count)
    for first in range(start, start + count, BULK):
        indexes = range(first, min(start + count, first + BULK))
        cases = Case.objects.bulk_create(
            [Case(batch=batch, code=codes[i % CODES], slot=i // CODES + 1, status=CaseStatus.APPROVED) for i in indexes]
        )
        versions = []
        for case, i in zip(cases, indexes, strict=True):
            note, dialogue = _note(i), _dialogue(i)
            versions += [
                ArtefactVersion(case=case, kind="note", number=1, source="llm_polished", content=note,
                                text=rendering.note_text(note)),
                ArtefactVersion(case=case, kind="dialogue", number=1, source="llm_polished", content=dialogue,
                                text=rendering.dialogue_text(dialogue)),
            ]  # fmt: skip
        versions = ArtefactVersion.objects.bulk_create(versions)
        ReviewDecision.objects.bulk_create(
            ReviewDecision(case=case, stage="pair", reviewer=reviewers[(i + offset) % 3], action="approve",
                           note_version=versions[2 * n], dialogue_version=versions[2 * n + 1])
            for n, (case, i) in enumerate(zip(cases, indexes, strict=True))
            for offset in range(1 + i % 2)
        )  # fmt: skip
    return codes


def export_options(*, fmt: str, profile: str) -> Any:
    from review.datasets.export import ExportOptions
    from review.datasets.splits import SplitPlan

    return ExportOptions(fmt=fmt, profile=profile, split=SplitPlan(mode="grouped", ratios=(0.8, 0.1, 0.1), seed=1))


def measure_export(*, fmt: str, profile: str, out: Path, traced: bool) -> dict[str, Any]:
    import gc

    import pyarrow as pa

    from review.datasets.export import dataset_export_write

    options = export_options(fmt=fmt, profile=profile)
    gc.collect()
    pa.default_memory_pool().release_unused()
    rss_peak_reset()
    wall, cpu = time.perf_counter(), time.process_time()
    result = dataset_export_write(options=options, out=out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures = {
        "format": fmt, "profile": profile, "rows": result.rows, "seconds": round(wall, 1), "cpu_s": round(cpu, 1),
        "rss_peak_mib": round(rss_peak() / 1024, 1), "zip_mib": round(out.stat().st_size / 2**20, 1),
    }  # fmt: skip
    out.unlink()
    if traced:
        tracemalloc.start()
        dataset_export_write(options=options, out=out)
        figures["py_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
        out.unlink()
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="10000,50000", help="approved pairs per size, ascending")
    parser.add_argument("--runs", default="jsonl:medsynth", help="format:profile at every size, comma-separated")
    parser.add_argument("--every-format-at", type=int, default=0, help="at this size, every format and profile")
    parser.add_argument("--tracemalloc", action="store_true", help="also the peak of Python allocations")
    parser.add_argument("--database-url", default="", help="a database of its own (left with the rows)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    runs = args.runs.split(",")
    scratch = Path(tempfile.mkdtemp(prefix="medsynth-bench-export-"))
    sizes = []
    try:
        common.django_setup(data_dir=str(scratch), database_url=args.database_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        created, codes = 0, None
        for pairs in sorted(int(size) for size in args.pairs.split(",")):
            started = time.perf_counter()
            codes = approved_pairs_create(pairs - created, start=created, codes=codes)
            created = pairs
            print(f"{pairs:,} approved pairs ({time.perf_counter() - started:.0f} s to add)", flush=True)
            measured = []
            every = [run for run in EVERY_RUN if run not in runs] if pairs == args.every_format_at else []
            for fmt, profile in (run.split(":") for run in runs + every):
                figures = measure_export(fmt=fmt, profile=profile, out=scratch / "export.zip", traced=args.tracemalloc)
                measured.append(figures)
                traced = f"  py peak {figures['py_peak_mib']:.0f} MiB" if args.tracemalloc else ""
                print(f"  {fmt:<8} {profile:<9} {figures['seconds']:>7.1f} s  CPU {figures['cpu_s']:>6.1f} s  "
                      f"RSS peak {figures['rss_peak_mib']:.0f} MiB{traced}", flush=True)  # fmt: skip
            sizes.append({"pairs": pairs, "runs": measured})
        database = connection.vendor
        connection.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"database": database, "sizes": sizes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
