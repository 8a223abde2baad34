"""Benchmark the batch form's code autocomplete over the whole ICD-10-CM catalogue: load the
catalogue (~98,000 codes) with frequencies on a fifth of them, then time N searches (code
prefixes and words of descriptions, as people type them) and print p50 / p95 / max, for the
search itself and for the whole HTTP request through the view. Target: p95 under 100 ms.

    .venv/bin/python scripts/benchmark_code_search.py [--queries 200]

Runs against a throwaway SQLite database in a temporary MEDSYNTH_DATA_DIR, or against
PostgreSQL when DATABASE_URL is set (migrated first; the catalogue is loaded in a
transaction that is rolled back, so the database is left as it was).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("DATABASE_URL"):
    os.environ["MEDSYNTH_DATA_DIR"] = tempfile.mkdtemp(prefix="medsynth-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from generation.code_search import codes_matching  # noqa: E402
from generation.models import IcdCode  # noqa: E402
from generation.services.catalogue import icd10_catalogue_load  # noqa: E402

SEED = 13
WITH_FREQUENCY = 0.2


def _queries(count: int) -> list[str]:
    """Half code prefixes (1 to 5 characters, with the dot or not, any case), half one or two
    words of real descriptions, and a few that match nothing."""
    rng = random.Random(SEED)
    codes = list(IcdCode.objects.values_list("code", "description"))
    queries = []
    for index in range(count):
        code, description = rng.choice(codes)
        if index % 20 == 19:
            queries.append(rng.choice(["xyzzy", "Q99.99", "no such illness"]))
        elif index % 2:
            length = rng.randint(1, min(5, len(code)))
            queries.append(rng.choice([str.upper, str.lower])(code[:length]))
        else:
            words = [word for word in description.replace(",", " ").split() if len(word) >= 4] or ["disease"]
            start = rng.randrange(len(words))
            queries.append(" ".join(words[start : start + rng.randint(1, 2)]).lower())
    return queries


def _frequencies_imported() -> None:
    rng = random.Random(SEED)
    ids = list(IcdCode.objects.filter(is_billable=True).values_list("id", flat=True))
    chosen = rng.sample(ids, int(len(ids) * WITH_FREQUENCY))
    IcdCode.objects.bulk_update(
        [IcdCode(pk=pk, frequency=rng.randint(1, 100_000)) for pk in chosen], ["frequency"], batch_size=2000
    )


def _timed(label: str, queries: list[str], search: Callable[[str], object]) -> None:
    search(queries[0])  # warm the caches and the connection once
    times = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    print(f"{label:<40} p50 {cuts[49]:6.1f} ms   p95 {cuts[94]:6.1f} ms   max {max(times):6.1f} ms")


def _is_code_prefix(query: str) -> bool:
    return query[:1].isalpha() and (len(query) == 1 or query[1].isdigit())


def _catalogue_with_frequencies() -> Client:
    """The catalogue loaded (when it is not), frequencies on a fifth of the billable codes,
    and a test client logged in as an admin."""
    if IcdCode.objects.count() < 90_000:
        started = time.perf_counter()
        loaded = icd10_catalogue_load()
        print(f"Catalogue loaded: {loaded.total:,} codes in {time.perf_counter() - started:.1f} s")
    _frequencies_imported()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generation_icdcode")
    admin = get_user_model().objects.create_superuser("bench-admin", password=None)
    client = Client()
    client.force_login(admin)
    return client


def _benchmark(client: Client, count: int) -> None:
    url = reverse("generation:code-search")
    queries = _queries(count)
    print(f"{connection.vendor}, {IcdCode.objects.count():,} codes, {len(queries)} queries, e.g. {queries[:6]}")
    prefixes = [query for query in queries if _is_code_prefix(query)]
    words = [query for query in queries if not _is_code_prefix(query)]
    for label, subset in (("code prefixes", prefixes), ("words", words), ("all", queries)):
        _timed(f"search, {label} ({len(subset)})", subset, lambda query: codes_matching(query=query))
    _timed(
        f"HTTP request through the view, all ({len(queries)})",
        queries,
        lambda query: client.get(url, {"q": query}, headers={"HX-Request": "true"}, secure=True),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    setup_test_environment()  # the test client's host is allowed
    if connection.vendor == "sqlite":  # a throwaway database: searched as committed data
        _benchmark(_catalogue_with_frequencies(), args.queries)
        return
    with transaction.atomic():
        _benchmark(_catalogue_with_frequencies(), args.queries)
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
