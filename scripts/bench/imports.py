"""Dataset import: CPU per row and peak memory at several file sizes.

Each size is a synthetic file of N rows (about `--row-kb` KB each, like the published MedSynth
CSV) in one of the import formats, imported through `dataset_import_file`, the service that the
import page's job and `manage.py import_dataset` call: validation, parsing, checks, the writes and
the near-duplicate index (which runs as each chunk commits). The texts are random sentences, so
no two rows are near-duplicates. Sizes run in ascending order into one database.

- CPU: time.process_time() of this process per row (SQLite runs in it; on PostgreSQL, with
  --database-url, the server's CPU is not counted);
- CPU by part: the time spent in the validation pass, in parsing notes and dialogues, in the
  automatic checks of each imported version, and in the near-duplicate index (the functions
  wrapped with a CPU timer); "rest" is reading the rows again and writing them;
- memory: the process's peak RSS during the import (VmHWM, reset to the current RSS before
  each size through /proc/self/clear_refs), and with --tracemalloc the peak of Python allocations (a second import
  of the same size: tracemalloc slows it, so its time is not reported).

    python scripts/bench/imports.py --rows 2000,8000 --format medsynth --json out.json
    python scripts/bench/imports.py --gigabyte            # a ~1 GB file, for a manual run
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

CODES = 200
GIGABYTE = 1024**3
_WORD_LIST = (
    "pain fever cough fatigue nausea dizziness swelling rash headache wheezing chest abdomen knee back "
    "shoulder left right mild severe intermittent constant worse better since morning evening night "
    "after meals exertion rest walking stairs sleeping medication tablet dose daily twice weekly "
    "blood pressure glucose sugar levels labs imaging x-ray ultrasound referral follow-up clinic "
    "history family mother father smoking alcohol exercise diet weight appetite urine stool vision "
    "hearing breathing tender normal clear warm stable improving denies reports describes notes"
)
_WORDS = _WORD_LIST.split()
_SECTIONS = ("SUBJECTIVE", "OBJECTIVE", "ASSESSMENT", "PLAN")


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 14))
    return f"{' '.join(words).capitalize()} for {rng.randint(1, 30)} days."


def _paragraph(rng: random.Random, chars: int) -> str:
    sentences: list[str] = []
    length = 0
    while length < chars:
        sentences.append(_sentence(rng))
        length += len(sentences[-1]) + 1
    return " ".join(sentences)


def synthetic_pair(rng: random.Random, *, row_bytes: int) -> tuple[str, str]:
    """A SOAP note and a tagged dialogue of about `row_bytes` together."""
    part = row_bytes // 2
    note = "\n\n".join(f"{title}:\n{_paragraph(rng, part // len(_SECTIONS))}" for title in _SECTIONS)
    turns = []
    length = 0
    while length < part:
        speaker = "doctor" if len(turns) % 2 == 0 else "patient"
        turns.append(f"[{speaker}]: {_paragraph(rng, 160)}")
        length += len(turns[-1]) + 1
    return note, "\n".join(turns)


def _rows(*, rows: int, row_bytes: int, codes: list[str], seed: int) -> Iterator[tuple[str, str, str]]:
    rng = random.Random(seed)
    for number in range(rows):
        note, dialogue = synthetic_pair(rng, row_bytes=row_bytes)
        yield note, dialogue, codes[number % len(codes)]


def import_file_write(path: Path, *, fmt: str, rows: int, row_bytes: int, codes: list[str], seed: int = 1) -> None:
    """A file of `rows` distinct rows in `fmt`, written as it is generated."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        pairs = _rows(rows=rows, row_bytes=row_bytes, codes=codes, seed=seed)
        if fmt == "jsonl":
            for note, dialogue, code in pairs:
                handle.write(json.dumps({"icd10": code, "note_text": note, "dialogue_text": dialogue}) + "\n")
            return
        writer = csv.writer(handle)
        medsynth = fmt == "medsynth"
        writer.writerow([" Note", "Dialogue", "ICD10", "ICD10_desc"] if medsynth else ["dialogue", "note", "code"])
        for note, dialogue, code in pairs:
            writer.writerow([note, dialogue, code, ""] if medsynth else [dialogue, note, code])


def rows_for_bytes(size: int, *, row_bytes: int) -> int:
    return size // row_bytes + 1


# --- Memory -------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def rss_peak_reset() -> None:
    """Start measuring the peak RSS again from the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def rss_peak() -> int:
    """The peak RSS in KiB since the last reset."""
    return _status_kib("VmHWM")


# --- CPU by part -------------------------------------------------------------------------------

# (label, module, function): each is looked up in the module at call time, so wrapping it there counts it.
PARTS = (
    ("validation pass", "review.datasets.imports.service", "file_validate"),
    ("parsing", "review.datasets.imports.readers", "note_parse"),
    ("parsing", "review.datasets.imports.readers", "dialogue_parse"),
    ("checks", "generation.services.batches", "version_check_flags"),
    ("near-duplicate index", "generation.services.near_duplicates", "near_duplicates_index"),
)


def _timed(function: Callable[..., Any], label: str, spent: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started

    return wrapper


@contextmanager
def cpu_by_part() -> Iterator[dict[str, float]]:
    """CPU seconds spent in each of PARTS while the block runs."""
    import importlib

    spent = dict.fromkeys((label for label, _module, _name in PARTS), 0.0)
    originals = []
    for label, module_name, name in PARTS:
        module = importlib.import_module(module_name)
        originals.append((module, name, getattr(module, name)))
        setattr(module, name, _timed(getattr(module, name), label, spent))
    try:
        yield spent
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


# --- Measuring ------------------------------------------------------------------------------------


def measure_import(path: Path, *, fmt: str, traced: bool) -> dict[str, Any]:
    import gc

    from review.datasets.imports import dataset_import_file

    gc.collect()
    rss_peak_reset()
    if traced:
        tracemalloc.start()
    with cpu_by_part() as parts:
        wall, cpu = time.perf_counter(), time.process_time()
        result = dataset_import_file(path=path, fmt=fmt, batch_name=f"Bench import of {path.name}")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rows = max(1, result.rows_imported)
    by_part = {label: round(seconds * 1000 / rows, 2) for label, seconds in parts.items()}
    by_part["rest (reading, writing)"] = round((cpu - sum(parts.values())) * 1000 / rows, 2)
    figures: dict[str, Any] = {"rows": result.rows_imported, "problems": len(result.report)}
    if traced:
        figures["py_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    else:
        figures |= {
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "cpu_ms_per_row": round(cpu * 1000 / rows, 2),
            "cpu_ms_per_row_by_part": by_part,
            "rss_peak_mib": round(rss_peak() / 1024, 1),
        }
    return figures


def measure_size(
    *, rows: int, fmt: str, row_bytes: int, codes: list[str], folder: Path, traced: bool
) -> dict[str, Any]:
    suffix = ".jsonl" if fmt == "jsonl" else ".csv"
    path = folder / f"import-{rows}{suffix}"
    import_file_write(path, fmt=fmt, rows=rows, row_bytes=row_bytes, codes=codes, seed=rows)
    figures = {"file_mib": round(path.stat().st_size / 2**20, 1), **measure_import(path, fmt=fmt, traced=False)}
    if traced:
        path_again = path.with_name(f"again-{path.name}")
        import_file_write(path_again, fmt=fmt, rows=rows, row_bytes=row_bytes, codes=codes, seed=rows + 1)
        figures["py_peak_mib"] = measure_import(path_again, fmt=fmt, traced=True)["py_peak_mib"]
        path_again.unlink()
    path.unlink()
    print(
        f"{fmt:<9} {rows:>8,} rows {figures['file_mib']:>8.1f} MiB  {figures['cpu_ms_per_row']:>6.2f} ms CPU/row  "
        f"{figures['wall_s']:>7.1f} s  RSS peak {figures['rss_peak_mib']:.0f} MiB"
        + (f"  py peak {figures['py_peak_mib']:.0f} MiB" if traced else ""),
        flush=True,
    )
    print("    ms CPU per row by part: " + ", ".join(f"{k} {v}" for k, v in figures["cpu_ms_per_row_by_part"].items()))
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000,8000", help="rows per size, ascending")
    parser.add_argument("--format", dest="fmt", default="medsynth", choices=("medsynth", "aci", "jsonl"))
    parser.add_argument("--row-kb", type=float, default=8.0, help="about this many KB of text per row")
    parser.add_argument("--gigabyte", action="store_true", help="one size: a file of about 1 GB (minutes)")
    parser.add_argument("--tracemalloc", action="store_true", help="also the peak of Python allocations")
    parser.add_argument("--database-url", default="", help="a database of its own (left with the rows)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    row_bytes = int(args.row_kb * 1024)
    sizes = [rows_for_bytes(GIGABYTE, row_bytes=row_bytes)] if args.gigabyte else sorted(map(int, args.rows.split(",")))
    scratch = Path(tempfile.mkdtemp(prefix="medsynth-bench-imports-"))
    try:
        common.django_setup(data_dir=str(scratch), database_url=args.database_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        codes = [code.code for code in common.synthetic_codes(CODES, prefix="Q")]
        results = [
            measure_size(rows=rows, fmt=args.fmt, row_bytes=row_bytes, codes=codes, folder=scratch,
                         traced=args.tracemalloc)
            for rows in sizes
        ]  # fmt: skip
        database = connection.vendor
        connection.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"format": args.fmt, "database": database, "sizes": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
