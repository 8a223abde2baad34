"""Benchmark the dashboards: seed N cases with their versions, LLM calls, decisions and edit
burden (bulk_create, no pipeline), then request every figure page and CSV as an admin and
print the response times (p50 / p95) and the SQL statements each takes.

    .venv/bin/python scripts/benchmark_dashboards.py [--cases 50000] [--repeat 20]

Runs against a throwaway SQLite database in a temporary MEDSYNTH_DATA_DIR (the seeded rows
are committed there), or against PostgreSQL when DATABASE_URL is set (then everything
happens in one transaction that is rolled back, so the database is left as it was). The
requests go through Django's test client: URL routing, middleware, the view, the selectors
and the template, without a network hop. Target: p95 <= 300 ms per figure.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The throwaway SQLite database (about 500 MB at 50,000 cases), removed when the run ends.
THROWAWAY_DIR = "" if os.environ.get("DATABASE_URL") else tempfile.mkdtemp(prefix="medsynth-bench-")
if THROWAWAY_DIR:
    os.environ["MEDSYNTH_DATA_DIR"] = THROWAWAY_DIR
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import reverse  # noqa: E402

from generation import rendering  # noqa: E402
from generation.models import (  # noqa: E402
    AgentCall,
    AgentName,
    ArtefactVersion,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    code_compact,
)
from medsynth_site.roles import ADMIN, CLINICIAN, user_create  # noqa: E402
from review.dashboards.figures import FIGURES  # noqa: E402
from review.models import EditBurden, ReviewDecision  # noqa: E402

CODES = 2000
CHAPTERS = 22
BLOCKS_PER_CHAPTER = 8
BULK = 2000
REVIEWERS = 20
MODELS = ("gpt-4o", "gpt-4o-mini")
AGENTS = tuple(AgentName.values)
# Final status of the seeded cases, with weights: most pairs reviewed, some still waiting.
STATUSES = (
    (CaseStatus.APPROVED, 55),
    (CaseStatus.REJECTED, 10),
    (CaseStatus.PAIR_REVIEW, 20),
    (CaseStatus.PLANNED, 10),
    (CaseStatus.FAILED, 5),
)
CHECK_SUMMARIES = ("", "", "", " coverage_unspoken:warning ", " placeholder:error soap_thin_section:warning ")
NOTE = {
    "chief_complaint": "Follow-up of a chronic condition.",
    "subjective": "Reports fatigue and poor sleep for three weeks; no fever, no weight loss. " * 3,
    "objective": "BP 132/84, HR 76, lungs clear, no oedema. " * 3,
    "assessment": "Stable condition with partial response to treatment. " * 2,
    "plan": "Continue metformin 500 mg twice daily; recheck HbA1c in 3 months. " * 2,
}
DIALOGUE = {
    "turns": [
        {"speaker": "doctor" if i % 2 == 0 else "patient", "text": f"Line {i} of a routine follow-up visit."}
        for i in range(30)
    ]
}


def _codes() -> list[IcdCode]:
    rows = []
    for i in range(CODES):
        chapter = i % CHAPTERS + 1
        block = f"Q{chapter:02d}-{i % BLOCKS_PER_CHAPTER}"
        code = f"Q{i // 10:03d}.{i % 10}"
        rows.append(
            IcdCode(
                code=code, code_compact=code_compact(code), description=f"Bench condition {i}", chapter=str(chapter),
                chapter_title=f"Chapter {chapter}", block=block, block_title=f"Block {block}", depth=2,
                is_billable=True, frequency=10_000 // (1 + i % 500),
            )
        )  # fmt: skip
    IcdCode.objects.bulk_create(rows, batch_size=BULK)
    return list(IcdCode.objects.filter(description__startswith="Bench condition").order_by("pk"))


def _status(rng: random.Random) -> str:
    return rng.choices([status for status, _ in STATUSES], weights=[weight for _, weight in STATUSES])[0]


def seed(count: int, *, dashboard_rows: bool = True) -> None:
    """`count` cases with their versions and decisions; with `dashboard_rows`, also the LLM
    calls and edit burden that only the dashboards read (the review screens never do: without
    them, 50,000 cases seed in about half the time)."""
    rng = random.Random(1)
    codes = _codes()
    clinicians = Group.objects.get(name=CLINICIAN)
    # No password (hashing one takes a third of a second): the benchmark logs in with force_login.
    reviewers = User.objects.bulk_create([User(username=f"bench-clinician-{i}") for i in range(REVIEWERS)])
    clinicians.user_set.add(*reviewers)
    batches = [GenerationBatch.objects.create(name=f"Benchmark {i}", model=MODELS[i % len(MODELS)]) for i in range(5)]
    note_text, dialogue_text = rendering.note_text(NOTE), rendering.dialogue_text(DIALOGUE)
    for start in range(0, count, BULK):
        indexes = range(start, min(count, start + BULK))
        statuses = {i: _status(rng) for i in indexes}
        cases = Case.objects.bulk_create(
            [
                Case(batch=batches[i % len(batches)], code=codes[i % CODES], slot=i // CODES + 1, status=statuses[i],
                     has_check_flags=bool(CHECK_SUMMARIES[i % 5]), check_summary=CHECK_SUMMARIES[i % 5])
                for i in indexes
            ]
        )  # fmt: skip
        produced = [(case, i) for case, i in zip(cases, indexes, strict=True) if statuses[i] != CaseStatus.PLANNED]
        calls = AgentCall.objects.bulk_create(
            [
                AgentCall(case=case, agent=agent, endpoint_name="bench", model=case.batch.model,
                          prompt_version=f"{agent}@v1", request_messages=[{"role": "user", "content": "..."}],
                          input_tokens=1500 + i % 700, output_tokens=600 + i % 300, cost=Decimal("0.004200"))
                for case, i in (produced if dashboard_rows else [])
                for agent in AGENTS
            ]
        )  # fmt: skip
        call_of = {(call.case_id, call.agent): call for call in calls}
        versions = ArtefactVersion.objects.bulk_create(
            [
                ArtefactVersion(case=case, kind=kind, number=1, source="llm_polished", content=content, text=text,
                                agent_call=call_of.get((case.pk, agent)))
                for case, _i in produced
                for kind, content, text, agent in (
                    ("note", NOTE, note_text, AgentName.NOTE_POLISHER),
                    ("dialogue", DIALOGUE, dialogue_text, AgentName.DIALOGUE_POLISHER),
                )
            ]
        )  # fmt: skip
        version_of = {(version.case_id, version.kind): version for version in versions}
        decisions, burdens = [], []
        for case, i in produced:
            note, dialogue = version_of[(case.pk, "note")], version_of[(case.pk, "dialogue")]
            named = {"note_version": note, "dialogue_version": dialogue}
            if statuses[i] in (CaseStatus.APPROVED, CaseStatus.REJECTED):
                action = "reject" if statuses[i] == CaseStatus.REJECTED else ("edit" if i % 4 == 0 else "approve")
                extra = {"reason": "factually_wrong", "comment": "Bench."} if action == "reject" else {}
                for offset in range(1 + (i % 10 == 0)):  # every tenth pair has two reviewers
                    decisions.append(
                        ReviewDecision(case=case, stage="pair", reviewer=reviewers[(i + offset) % REVIEWERS],
                                       action=action, seconds_spent=20 + rng.randrange(300), **named, **extra)
                    )  # fmt: skip
            if statuses[i] == CaseStatus.APPROVED and dashboard_rows:
                burdens += [
                    EditBurden(case=case, part=part, generated_version=version, approved_version=version,
                               generated_words=120, approved_words=120, distance=(i % 7) * (action == "edit"))
                    for part, version in (("subjective", note), ("objective", note), ("assessment", note),
                                          ("plan", note), ("dialogue", dialogue))
                ]  # fmt: skip
        ReviewDecision.objects.bulk_create(decisions, batch_size=BULK)
        EditBurden.objects.bulk_create(burdens, batch_size=BULK)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(client: Client, url: str, repeat: int) -> tuple[float, float, int]:
    statements = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), _percentile(times, 0.95), len(statements)


def run(*, cases: int, repeat: int, database: str) -> None:
    started = time.perf_counter()
    seed(cases)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as a database in use has
    print(f"Seeded {cases:,} cases in {time.perf_counter() - started:.1f} s on {database}")
    admin = user_create(username="bench-admin", role=ADMIN)[0]
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    pages = [("index", reverse("review:dashboards"))]
    for figure in FIGURES:
        pages.append((figure.slug, reverse("review:dashboard-figure", args=[figure.slug])))
        pages.append((f"{figure.slug} CSV", reverse("review:dashboard-csv", args=[figure.slug])))
    batch = GenerationBatch.objects.filter(name="Benchmark 0").get()
    pages.append(("funnel, one batch", reverse("review:dashboard-figure", args=["funnel"]) + f"?batch={batch.pk}"))
    print(f"{'page':<24} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    worst = 0.0
    for name, url in pages:
        p50, p95, queries = measure(client, url, repeat)
        worst = max(worst, p95)
        print(f"{name:<24} {p50:>8.1f} {p95:>8.1f} {queries:>8}")
    print(f"Worst p95: {worst:.0f} ms (target: 300 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    plain_static = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=plain_static, SECURE_SSL_REDIRECT=False):
        if THROWAWAY_DIR:
            # A throwaway file: the seeded rows are committed (reading 50,000 cases' rows back
            # from inside one huge uncommitted SQLite transaction is not what a server sees).
            try:
                run(cases=args.cases, repeat=args.repeat, database="SQLite (temporary)")
            finally:
                connection.close()
                shutil.rmtree(THROWAWAY_DIR, ignore_errors=True)
            return
        with transaction.atomic():
            run(cases=args.cases, repeat=args.repeat, database="PostgreSQL (rolled back)")
            transaction.set_rollback(True)


if __name__ == "__main__":
    main()
