"""Benchmark the near-duplicate index: index N pairs (a note and a dialogue each) through the
real service, then time one lookup: a new case whose note is an edited copy of an indexed one,
indexed the way a version write indexes it, and its near-duplicates read as the item screen
reads them.

    .venv/bin/python scripts/bench_near_duplicates.py [--pairs 50000] [--lookups 20]

The text is synthetic, made up here from a generated vocabulary (no dataset is read); one pair
in a hundred has an edited copy of an earlier note under another code, so lookups find
something. Runs against a throwaway SQLite database in a temporary MEDSYNTH_DATA_DIR, or
against PostgreSQL when DATABASE_URL is set (then in one transaction that is rolled back).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
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

from generation.models import (  # noqa: E402
    ArtefactVersion,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    NearDuplicatePair,
    SignatureBand,
    TextSignature,
    code_compact,
)
from generation.selectors import near_duplicates_of_case  # noqa: E402
from generation.services.near_duplicates import near_duplicates_index  # noqa: E402

CODES = 500
BULK = 1000
NOTE_WORDS, DIALOGUE_TURNS = 250, 40
_SYLLABLES = ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "zu", "che", "an", "ol", "ir")


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    return sorted({"".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(size)})


def note_text(rng: random.Random, words: list[str]) -> str:
    sections = ("SUBJECTIVE", "OBJECTIVE", "ASSESSMENT", "PLAN")
    per_section = NOTE_WORDS // len(sections)
    return "\n\n".join(f"{name}:\n" + " ".join(rng.choices(words, k=per_section)) for name in sections)


def dialogue_text(rng: random.Random, words: list[str]) -> str:
    turns = (f"[{'doctor' if n % 2 == 0 else 'patient'}]: {' '.join(rng.choices(words, k=10))}" for n in range(40))
    return "\n".join(turns)


def edited(rng: random.Random, text: str, changes: int = 4) -> str:
    tokens = text.split(" ")
    for position in rng.sample(range(len(tokens)), changes):
        tokens[position] = "changed"
    return " ".join(tokens)


def codes_create() -> list[IcdCode]:
    rows = [
        IcdCode(
            code=f"Y{i // 10:02d}.{i % 10}",
            code_compact=code_compact(f"Y{i // 10:02d}.{i % 10}"),
            description=f"Bench {i}",
            chapter=str(i % 22 + 1),
            chapter_title=f"Chapter {i % 22 + 1}",
            block="Y00-Y99",
            block_title="Bench",
            depth=2,
            is_billable=True,
        )
        for i in range(CODES)
    ]
    IcdCode.objects.bulk_create(rows, batch_size=BULK)
    return list(IcdCode.objects.filter(block_title="Bench").order_by("code"))


def cases_create(
    *, batch: GenerationBatch, codes: list[IcdCode], texts: list[tuple[str, str]], first: int
) -> list[int]:
    cases = Case.objects.bulk_create(
        Case(batch=batch, code=codes[i % CODES], slot=i // CODES + 1, status=CaseStatus.PAIR_REVIEW)
        for i in range(first, first + len(texts))
    )
    ArtefactVersion.objects.bulk_create(
        ArtefactVersion(case=case, kind=kind, number=1, source="imported", content={}, text=text)
        for case, (note, dialogue) in zip(cases, texts, strict=True)
        for kind, text in (("note", note), ("dialogue", dialogue))
    )
    return [case.pk for case in cases]


def pair_texts(rng: random.Random, words: list[str], count: int) -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    for i in range(count):
        copied = i >= 100 and i % 100 == 0
        note = edited(rng, texts[rng.randrange(i)][0]) if copied else note_text(rng, words)
        texts.append((note, dialogue_text(rng, words)))
    return texts


def run(pairs: int, lookups: int) -> None:
    rng = random.Random(16)
    words = vocabulary(rng)
    codes = codes_create()
    batch = GenerationBatch.objects.create(name="Near-duplicate benchmark")
    started = time.perf_counter()
    texts = pair_texts(rng, words, pairs)
    case_ids: list[int] = []
    for start in range(0, pairs, BULK):
        case_ids += cases_create(batch=batch, codes=codes, texts=texts[start : start + BULK], first=start)
    print(f"Created {pairs:,} pairs (synthetic text) in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    for start in range(0, pairs, BULK):
        near_duplicates_index(case_ids=case_ids[start : start + BULK])
    indexing = time.perf_counter() - started
    print(
        f"Indexed {pairs:,} pairs ({TextSignature.objects.count():,} texts hashed, "
        f"{SignatureBand.objects.count():,} band keys, {NearDuplicatePair.objects.count() // 2:,} near-duplicate "
        f"pairs found) in {indexing:.1f} s: {2 * pairs / indexing:,.0f} texts/s"
    )

    write_times, read_times, found = [], [], []
    for n in range(lookups):
        source = texts[rng.randrange(pairs)][0]
        (case_id,) = cases_create(
            batch=batch, codes=codes, texts=[(edited(rng, source), dialogue_text(rng, words))], first=pairs + n
        )
        started = time.perf_counter()
        near_duplicates_index(case_ids=[case_id])
        write_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        matches = near_duplicates_of_case(case=Case.objects.get(pk=case_id))
        read_times.append(time.perf_counter() - started)
        found.append(len(matches))
    print(
        f"One lookup (median of {lookups}): {statistics.median(write_times) * 1000:.1f} ms to hash a new version, "
        f"find and store its near-duplicates; {statistics.median(read_times) * 1000:.1f} ms to read them for the "
        f"item screen (found {min(found)}-{max(found)} per lookup)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=50_000)
    parser.add_argument("--lookups", type=int, default=20)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    database = "PostgreSQL (rolled back)" if os.environ.get("DATABASE_URL") else "SQLite (temporary)"
    print(f"Database: {database}")
    with transaction.atomic():
        run(args.pairs, args.lookups)
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
