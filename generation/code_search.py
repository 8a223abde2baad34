"""Read-only queries for choosing codes: the autocomplete over the whole catalogue and the
approved / underway pairs of each code.

(A module of its own beside selectors.py, which is past the size where the style guide
splits modules.)

The autocomplete stays fast on ~98,000 codes without a search engine: a code prefix is a
range on the unique index of `code_compact` (the same on SQLite and PostgreSQL, whatever
the collation's LIKE rules), and words are matched in the descriptions, most frequent
first, with a limit, over indexes in that order (migration 0010).
`make benchmark-code-search` prints the figures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, OrderBy, Q, QuerySet, Subquery

from generation.models import CODE_WRAPPING, TERMINAL_STATUSES, Case, CaseStatus, IcdCode, code_compact

SEARCH_LIMIT = 20
SEARCH_MAX_WORDS = 6
# Shorter words match most of the catalogue and say nothing; a lone letter is a code prefix.
SEARCH_MIN_WORD = 2
# A letter, then optionally a digit and more code characters: "E", "e11", "E11.9", "S72.00"
_CODE_PREFIX = re.compile(r"^[A-Za-z](\d[0-9A-Za-z.]*)?$")
_IN_LIMIT = 900  # stays under SQLite's variable limit


def codes_matching(*, query: str, limit: int = SEARCH_LIMIT) -> list[IcdCode]:
    """The autocomplete's answer: codes that start with a typed code (with or without the
    dot), else codes whose description holds every typed word, most frequent first."""
    text = query.strip(CODE_WRAPPING)
    if _CODE_PREFIX.match(text):
        found = _codes_starting_with(code_compact(text))
    else:
        words = search_terms(text)[:SEARCH_MAX_WORDS]
        if not words:
            return []
        found = _codes_described_by(words, limit)
    return list(found.only("code", "description", "chapter", "block", "is_billable", "frequency")[:limit])


def search_terms(text: str) -> list[str]:
    """The parts every description must hold: words of SEARCH_MIN_WORD letters or more, and a
    number kept with the word before it ("type 2 diab" -> "type 2", "diab"), so "type 2"
    does not also find type 1."""
    terms: list[str] = []
    for word in text.split():
        if word.isdigit() and terms:
            terms[-1] = f"{terms[-1]} {word}"
        elif len(word) >= SEARCH_MIN_WORD or word.isdigit():
            terms.append(word)
    return terms


def _codes_starting_with(prefix: str) -> QuerySet[IcdCode]:
    # 'E11' <= code < 'E12' selects every code that starts with E11, from the index.
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return IcdCode.objects.filter(code_compact__gte=prefix, code_compact__lt=after).order_by("code_compact")


def _codes_described_by(words: list[str], limit: int) -> QuerySet[IcdCode]:
    matching = IcdCode.objects.all()
    for word in words:
        matching = matching.filter(description__icontains=word)
    most_frequent: list[str | OrderBy] = [F("frequency").desc(nulls_last=True), "code"]
    # The ids first, in a subquery that reads only frequency, code and description: SQLite
    # walks its index of those (migration 0010) and never reads the wide rows.
    chosen = matching.order_by(*most_frequent).values("id")[:limit]
    return IcdCode.objects.filter(id__in=Subquery(chosen)).order_by(*most_frequent)


# --- Pairs per code ---------------------------------------------------------------------

# A case that can still become an approved pair: generating, waiting for a review or
# for an admin (a failed case can be retried). Approved, rejected, cancelled and
# discarded cases are settled; discard a stuck case to have a top-up replace it.
UNDERWAY = ~Q(status__in=TERMINAL_STATUSES)


@dataclass(frozen=True)
class CodePairCounts:
    approved: int = 0
    underway: int = 0


def code_pair_counts(*, code_ids: Iterable[int]) -> dict[int, CodePairCounts]:
    """{code id: its approved and underway pairs over every batch}, for each code asked, in
    one query: by id for a few codes, over every case for many (a chapter's thousands of ids
    would not fit in one query on SQLite)."""
    ids = list(dict.fromkeys(code_ids))
    cases = Case.objects.filter(code_id__in=ids) if len(ids) <= _IN_LIMIT else Case.objects.all()
    rows = (
        cases.values("code_id")
        .annotate(approved=Count("id", filter=Q(status=CaseStatus.APPROVED)), underway=Count("id", filter=UNDERWAY))
        .order_by()
    )
    counts = dict.fromkeys(ids, CodePairCounts())
    counts.update(
        {row["code_id"]: CodePairCounts(row["approved"], row["underway"]) for row in rows if row["code_id"] in counts}
    )
    return counts
