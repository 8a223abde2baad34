"""Review screens at several data sizes: p50 / p95 server time and SQL statements per page.

For each size, the cases are seeded with bulk_create (scripts/benchmark_dashboards.py's seed:
versions and decisions, without the LLM calls and edit burden that only the dashboards read; most
pairs reviewed, a fifth waiting in final review),
then every review page is requested as a logged-in admin, and every page a clinician may open as
one of the seed's clinicians, through Django's test client (routing, middleware, view, selectors,
template; no network hop). PostgreSQL with --database-url (each size
in a transaction rolled back afterwards), else SQLite in a temporary folder.

    python scripts/bench/review_pages.py --sizes 1000,50000 --repeat 10 --json out.json
    python scripts/bench/review_pages.py --sizes 50000 --pages "queue,item"   # only these pages
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402


def review_pages() -> list[tuple[str, str]]:
    from django.urls import reverse

    from generation.models import Case, CaseStatus
    from review.selectors import QUEUE_LABELS

    waiting = Case.objects.filter(status=CaseStatus.PAIR_REVIEW).order_by("id").first()
    if waiting is None:
        raise SystemExit("the seed left no case in final review")
    pages = [("review home", reverse("review:home"))]
    pages += [(f"queue: {label}", reverse("review:queue", args=[queue])) for queue, label in QUEUE_LABELS.items()]
    pages += [
        ("item (final pair)", reverse("review:item", args=[waiting.pk])),
        ("history", reverse("review:history", args=[waiting.pk])),
        ("agreement", reverse("review:agreement")),
        ("survey", reverse("review:survey")),
        ("survey results", reverse("review:survey-results")),
        ("dashboards index", reverse("review:dashboards")),
    ]
    return pages


def measure_pages(*, user: Any, cases: int, repeat: int, only: list[str]) -> dict[str, dict[str, float]]:
    """p50 / p95 and SQL statements of every review page `user` may open (a clinician has no
    adjudication queue, agreement or survey results), or of those whose name holds one of `only`."""
    import benchmark_dashboards as seeding
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    refusals = logging.getLogger("django.request")
    pages = {}
    for name, url in review_pages():
        if only and not any(part in name for part in only):
            continue
        refusals.disabled = True  # a 403 here is expected, not a warning with a traceback
        refused = client.get(url).status_code == 403
        refusals.disabled = False
        if refused:
            continue
        p50, p95, queries = seeding.measure(client, url, repeat)
        pages[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "queries": queries}
        print(f"{cases:>7,} {user.username:<22} {name:<24} {p50:>8.1f} {p95:>8.1f} {queries:>5}", flush=True)
    return pages


def measure_size(*, cases: int, repeat: int, only: list[str]) -> dict[str, Any]:
    import benchmark_dashboards as seeding
    from django.contrib.auth.models import User
    from django.db import connection

    from medsynth_site.roles import ADMIN, user_create

    started = time.perf_counter()
    seeding.seed(cases, dashboard_rows=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seeded_s = time.perf_counter() - started
    print(f"{cases:>7,} cases seeded in {seeded_s:.1f} s", flush=True)
    admin = user_create(username=f"bench-admin-{cases}", role=ADMIN)[0]
    # A clinician of the seed, who has decided many pairs: their queues hide what they decided.
    clinician = User.objects.get(username="bench-clinician-0")
    return {
        "cases": cases,
        "seed_s": round(seeded_s, 1),
        "pages": measure_pages(user=admin, cases=cases, repeat=repeat, only=only),
        "clinician_pages": measure_pages(user=clinician, cases=cases, repeat=repeat, only=only),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,50000")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pages", default="", help='only the pages whose name holds one of these, e.g. "queue,item"')
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="medsynth-bench-review-")
    results = []
    try:
        common.django_setup(data_dir=scratch, database_url=args.database_url)
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection, transaction
        from django.test.utils import override_settings

        call_command("migrate", verbosity=0)
        plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
        plain_static = {**settings.STORAGES, "staticfiles": plain}
        with override_settings(STORAGES=plain_static, SECURE_SSL_REDIRECT=False):
            for size in [int(size) for size in args.sizes.split(",")]:
                with transaction.atomic():
                    only = [part for part in args.pages.split(",") if part]
                    measured = measure_size(cases=size, repeat=args.repeat, only=only)
                    results.append({"database": connection.vendor, **measured})
                    transaction.set_rollback(True)
        connection.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
