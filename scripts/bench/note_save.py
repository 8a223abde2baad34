"""Note-section save: p50 / p95 server time, SQL statements, and where the time goes.

A case waiting in final (pair) review gets a realistic note and dialogue: ACI-Bench's training
encounters (../shared/data/aci-bench/train.csv, read at run time, never copied) when the file is
there, else made-up text (tests/synthetic_text.py). Its note's `--section` is then saved `--saves`
times with 20,000 characters through the real view (routing, middleware, form, the version write,
its checks and near-duplicate indexing after the commit, the re-rendered partial) with Django's
test client as a logged-in clinician, the htmx request the item screen sends. Each save changes
the text a little, as a reviewer's edit does, so no result of the previous save can be reused.

The breakdown times the parts the save calls (their code is wrapped while the benchmark runs):
each check by code, summed over its runs in one save (before the write and after its commit),
the version write, the near-duplicate index, the item context and the template rendering.
SQLite in a temporary folder by default; --database-url for PostgreSQL (a scratch database:
the case is left in it).

    python scripts/bench/note_save.py --saves 20 --json out.json
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import functools
import importlib
import json
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402

ACI_BENCH = common.ROOT.parent / "shared" / "data" / "aci-bench" / "train.csv"
SECTION_CHARS = 20_000
# (module, attribute, label): the parts of a save timed in the breakdown. Each is looked up
# by its caller at call time, so wrapping the attribute times every call; a part the code does
# not have (an older or newer version of it) is left out.
PARTS = (
    ("review.services.edits", "artefact_version_draft", "render and check the draft (before the write)"),
    ("review.services.edits", "artefact_version_write", "version write (under the case lock)"),
    ("generation.services.checks", "case_checks_refresh", "checks again after the commit"),
    ("generation.services.near_duplicates", "near_duplicates_index", "near-duplicate index"),
    ("review.views.edits", "item_context", "the item's whole context"),
    ("review.views.edits", "artefacts_context", "the saved partial's context"),
    ("review.views.edits", "page_or_partial", "rendering the saved partial"),
)


# --- the texts ------------------------------------------------------------------------


def _encounters() -> list[dict[str, str]]:
    if not ACI_BENCH.exists():
        return []
    with ACI_BENCH.open(newline="", encoding="utf-8") as source:
        return list(csv.DictReader(source))


def _dialogue_content(text: str) -> dict[str, Any]:
    """ACI-Bench's "[doctor] ..." lines as turns."""
    turns = []
    for line in text.splitlines():
        if line.startswith("[") and "]" in line:
            speaker, said = line[1:].split("]", 1)
            turns.append({"speaker": speaker.strip(), "text": said.strip()})
        elif turns and line.strip():
            turns[-1]["text"] += " " + line.strip()
    return {"turns": turns}


def _cut(text: str, size: int) -> str:
    """`text` repeated or cut to exactly `size` characters."""
    while len(text) < size:
        text += "\n" + text
    return text[:size]


def case_texts(section: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(note content, dialogue content, the 20,000-character text of `section`) and where
    they come from: one ACI-Bench encounter, and its notes' `section` texts in a row."""
    from generation.models import note_field_texts

    encounters = _encounters()
    if not encounters:
        from tests.synthetic_text import synthetic_text

        note = {key: synthetic_text(seed, words=60) for seed, key in enumerate(("subjective", "objective"), start=1)}
        note |= {"assessment": synthetic_text(3, words=40), "plan": synthetic_text(4, words=40)}
        speakers = ("doctor", "patient")
        dialogue = {"turns": [{"speaker": speakers[i % 2], "text": synthetic_text(10 + i, 14)} for i in range(60)]}
        return note, dialogue, _cut(synthetic_text(99, words=4000), SECTION_CHARS)
    first = encounters[0]
    note = note_field_texts(first["note"])
    long_text = "\n".join(
        text for encounter in encounters if (text := note_field_texts(encounter["note"]).get(section))
    )
    return note, _dialogue_content(first["dialogue"]), _cut(long_text, SECTION_CHARS)


def edited(text: str, save: int) -> str:
    """The section as the `save`-th edit leaves it: a few words at the end changed, same length."""
    marker = f" Reviewed, edit {save}."
    return text[: len(text) - len(marker)] + marker


# --- the case -----------------------------------------------------------------------------


def case_in_pair_review(*, note: dict[str, Any], dialogue: dict[str, Any]) -> Any:
    """A case waiting in final review, its versions written by the real version service."""
    from generation.models import ArtefactKind, Case, CaseStatus, GenerationBatch, VersionSource
    from generation.services.batch_counters import batch_counters_recount
    from generation.services.cases import artefact_version_create

    stamp = f"{time.time():.0f}"
    code = common.synthetic_codes(1, prefix="N")[0]
    batch = GenerationBatch.objects.create(name=f"Note-save benchmark {stamp}")
    case = Case.objects.create(batch=batch, code=code, slot=1, status=CaseStatus.PAIR_REVIEW)
    batch_counters_recount(batch_id=batch.pk)  # the case counts as planned before its pair is produced
    scenario = {"role": "Family medicine physician", "variables": {"demographics": "A patient of the practice."}}
    contents = {ArtefactKind.SCENARIO: scenario, ArtefactKind.NOTE: note, ArtefactKind.DIALOGUE: dialogue}
    for kind, content in contents.items():
        artefact_version_create(case=case, kind=kind, content=content, source=VersionSource.LLM_POLISHED)
    return case


# --- measuring ----------------------------------------------------------------------------


class Breakdown:
    """Milliseconds per part and per check, and how often each check ran, over the saves."""

    def __init__(self) -> None:
        self.parts_ms: dict[str, float] = defaultdict(float)
        self.parts_cpu_ms: dict[str, float] = defaultdict(float)
        self.checks_ms: dict[str, float] = defaultdict(float)
        self.check_runs: dict[str, int] = defaultdict(int)

    def timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.parts_ms[label] += (time.perf_counter() - started) * 1000
                self.parts_cpu_ms[label] += (time.process_time() - cpu_started) * 1000

        return wrapper

    def timed_check(self, run_check: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(run_check)
        def wrapper(check: Any, subject: Any) -> Any:
            started = time.perf_counter()
            try:
                return run_check(check, subject)
            finally:
                self.checks_ms[check.code] += (time.perf_counter() - started) * 1000
                self.check_runs[check.code] += 1

        return wrapper

    def per_save(self, saves: int) -> dict[str, Any]:
        def mean(values: dict[str, float]) -> dict[str, float]:
            return {key: round(value / saves, 1) for key, value in sorted(values.items(), key=lambda item: -item[1])}

        return {
            "parts_ms": mean(self.parts_ms),
            "parts_cpu_ms": mean(self.parts_cpu_ms),
            "checks_ms": mean(self.checks_ms),
            "check_runs": {code: round(runs / saves, 2) for code, runs in sorted(self.check_runs.items())},
        }


@contextmanager
def instrumented(breakdown: Breakdown) -> Iterator[None]:
    """Every part of PARTS and every check timed while inside."""
    targets = [(importlib.import_module(module), name, label) for module, name, label in PARTS]
    targets = [(module, name, label) for module, name, label in targets if hasattr(module, name)]
    checks = importlib.import_module("generation.checks")
    originals = [(module, name, getattr(module, name)) for module, name, _ in targets]
    originals.append((checks, "run_check", checks.run_check))
    try:
        for module, name, label in targets:
            setattr(module, name, breakdown.timed(getattr(module, name), label))
        checks.run_check = breakdown.timed_check(checks.run_check)
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    from django.db import connection

    statements: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield statements


def measure(*, saves: int, section: str, profile: int = 0) -> dict[str, Any]:
    from django.test import Client
    from django.urls import reverse

    from generation.selectors import current_version
    from medsynth_site.roles import CLINICIAN, user_create

    note, dialogue, long_text = case_texts(section)
    case = case_in_pair_review(note=note, dialogue=dialogue)
    clinician = user_create(username=f"bench-note-save-{case.pk}", role=CLINICIAN)[0]
    client = Client(HTTP_HOST="localhost")
    client.force_login(clinician)
    url = f"{reverse('review:note-section-edit', args=[case.pk, section])}?queue=pair"
    headers = {"HX-Request": "true", "HX-Target": f"note-section-{section}"}

    def save(number: int) -> tuple[float, float, int]:
        base = current_version(case=case, kind="note")
        data = {"base_number": base.number, "text": edited(long_text, number), "opened_at": f"{time.time():f}"}
        with counted_statements() as statements:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.post(url, data, headers=headers)
            elapsed, cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"the save answered {response.status_code}: {response.content[:500]!r}")
        return elapsed, cpu, len(statements)

    save(0)  # warm-up: imports, template compilation, first queries
    if profile:
        profiled = cProfile.Profile()
        profiled.runcall(save, -1)
        pstats.Stats(profiled).sort_stats("cumulative").print_stats(profile)
    breakdown = Breakdown()
    times, cpu_times, queries = [], [], []
    with instrumented(breakdown):
        for number in range(1, saves + 1):
            elapsed, cpu, statements = save(number)
            times.append(elapsed)
            cpu_times.append(cpu)
            queries.append(statements)
    p50, p95 = common.p50_p95(times)
    cpu_p50, cpu_p95 = common.p50_p95(cpu_times)
    return {
        "section": section,
        "section_chars": len(long_text),
        "note_chars": len(current_version(case=case, kind="note").text),
        "dialogue_chars": len(current_version(case=case, kind="dialogue").text),
        "text_source": "ACI-Bench train.csv" if ACI_BENCH.exists() else "synthetic",
        "saves": saves,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "cpu_p50_ms": round(cpu_p50, 1),
        "cpu_p95_ms": round(cpu_p95, 1),
        "queries": max(queries),
        "breakdown": breakdown.per_save(saves),
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['database']}: {result['saves']} saves of {result['section_chars']:,} characters "
        f"({result['section']}; note {result['note_chars']:,}, dialogue {result['dialogue_chars']:,} characters, "
        f"{result['text_source']}, load {result['load']}): p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms "
        f"(this process's CPU: p50 {result['cpu_p50_ms']} ms, p95 {result['cpu_p95_ms']} ms), "
        f"{result['queries']} SQL statements"
    )
    print("  parts, ms per save and this process's CPU ms (the checks run inside the draft and the refresh):")
    cpu = result["breakdown"]["parts_cpu_ms"]
    for label, ms in result["breakdown"]["parts_ms"].items():
        print(f"    {label:<64} {ms:>8.1f} {cpu[label]:>8.1f}")
    print("  checks, ms per save (runs per save):")
    runs = result["breakdown"]["check_runs"]
    for code, ms in result["breakdown"]["checks_ms"].items():
        print(f"    {code:<64} {ms:>8.1f} ({runs[code]:g})")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--section", default="plan", help="the note field saved")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions of one profiled save")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="medsynth-bench-note-save-")
    try:
        common.django_setup(data_dir=scratch, database_url=args.database_url)
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import override_settings

        call_command("migrate", verbosity=0)
        plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
        plain_static = {**settings.STORAGES, "staticfiles": plain}
        with override_settings(STORAGES=plain_static, SECURE_SSL_REDIRECT=False):
            result = {"database": connection.vendor, "load": common.machine()["load"]}
            result |= measure(saves=args.saves, section=args.section, profile=args.profile)
        connection.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
