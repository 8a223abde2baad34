"""The near-duplicate index over every case's current note and dialogue: MinHash (datasketch)
of the text's word 3-grams, and LSH banding so that a lookup reads only the cases that share
a band key, never the whole dataset.

The band keys live in the database (SignatureBand), so every web and worker process sees one
index without a process of its own to hold it. Each new current version is indexed once its
write commits (near_duplicates_index_on_commit): one hash, one indexed query for the
candidates, and the pairs that pass the threshold are stored in both directions. The
signatures are kept, so near_duplicates_rebuild recomputes the bands and pairs (after a
change of NEAR_DUPLICATE_THRESHOLD, say) without hashing any text again.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import islice

import numpy as np
from datasketch import MinHash, MinHashLSH
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet

from generation.models import (
    NEAR_DUPLICATE_KINDS,
    ArtefactVersion,
    Case,
    NearDuplicatePair,
    SignatureBand,
    TextSignature,
)
from generation.selectors import current_texts_of_cases

NUM_PERM = 128
# datasketch 2's 32-bit affine permutations; named, so the stored signatures stay comparable
# should a later datasketch change its default.
SCHEME = "affine32"
SHINGLE_WORDS = 3  # text_shingles spells the three out
# Rows per statement: well under SQLite's limit on the variables of one query.
_QUERY_CHUNK = 500
# In the lower-cased text's UTF-8 (a character outside ASCII is bytes no word holds).
_WORD = re.compile(rb"[a-z0-9]+")
_HASH_DTYPE = np.dtype("<u4")
_SHA1_WORDS = hashlib.sha1().digest_size // _HASH_DTYPE.itemsize  # noqa: S324 (a digest's size, no hashing)


def _threshold() -> float:
    return float(settings.NEAR_DUPLICATE_THRESHOLD)


@cache
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """The MinHash permutations of seed 1, drawn once per process (drawing them for every text
    cost as much as hashing it)."""
    return MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME).permutations  # type: ignore[no-any-return]


@cache
def _band_ranges(threshold: float) -> tuple[tuple[int, int], ...]:
    """The LSH bands datasketch chooses for this threshold: b bands of r hash values each.
    Missed pairs weigh 9 times more than false candidates (at 0.8: 14 bands of 9, so a pair at
    0.85 is found 97% of the time, not 69% as with equal weights): a missed near-duplicate can
    leak into a test split, a false candidate costs one comparison of two signatures."""
    return tuple(MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=(0.1, 0.9)).hashranges)


def text_shingles(text: str) -> set[bytes]:
    """The text's word 3-grams (lower case, punctuation and speaker-tag brackets ignored)."""
    words = _WORD.findall(text.lower().encode())
    if len(words) < SHINGLE_WORDS:
        return {b" ".join(words)} if words else set()
    return set(map(b" ".join, zip(words, words[1:], words[2:], strict=False)))


def _shingle_hashes(shingles: set[bytes]) -> list[int]:
    """datasketch's default hash of each shingle (sha1_hash32: the first four bytes of its
    SHA-1, little-endian), so that stored signatures stay comparable, read in one go rather
    than unpacked one call at a time."""
    digests = b"".join([hashlib.sha1(shingle).digest() for shingle in shingles])  # noqa: S324 (not for security)
    return np.frombuffer(digests, dtype=_HASH_DTYPE)[::_SHA1_WORDS].tolist()  # type: ignore[no-any-return]


def text_signature(text: str) -> np.ndarray | None:
    """The MinHash hash values of the text, or None for a text without words."""
    shingles = text_shingles(text)
    if not shingles:
        return None
    # The shingles are hashed already: the MinHash takes their hashes as they are.
    minhash = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME, permutations=_permutations(), hashfunc=int)
    minhash.update_batch(_shingle_hashes(shingles))
    return np.asarray(minhash.hashvalues, dtype=_HASH_DTYPE)


def band_keys(hashvalues: np.ndarray, *, threshold: float | None = None) -> list[int]:
    """The signature's LSH band keys: a 64-bit digest of each band (its position included)."""
    keys = []
    for position, (start, end) in enumerate(_band_ranges(threshold or _threshold())):
        digest = hashlib.blake2b(hashvalues[start:end].tobytes(), digest_size=8, person=bytes([position]) * 16)
        keys.append(int.from_bytes(digest.digest(), "little", signed=True))
    return keys


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard similarity of two signatures: the share of equal hash values."""
    return float(np.count_nonzero(a == b)) / len(a)


def _hashvalues(raw: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(raw), dtype=_HASH_DTYPE)


@dataclass(frozen=True)
class Signed:
    case_id: int
    kind: str
    version_id: int
    hashvalues: np.ndarray


def _chunks(items: Iterable[int], size: int = _QUERY_CHUNK) -> Iterator[list[int]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _stale_current_texts(case_ids: Collection[int]) -> tuple[list[Signed], list[tuple[int, str]]]:
    """Hash the current notes and dialogues whose signature is missing or of an older version.
    Returns the new signatures, and the (case, kind) whose current text has no words."""
    rows = TextSignature.objects.filter(case_id__in=case_ids).values_list("case_id", "kind", "version_id")
    indexed = {(case_id, kind): version_id for case_id, kind, version_id in rows}
    signed: list[Signed] = []
    emptied: list[tuple[int, str]] = []
    for (case_id, kind), (version_id, text) in current_texts_of_cases(
        case_ids=case_ids, kinds=NEAR_DUPLICATE_KINDS
    ).items():
        if indexed.get((case_id, kind)) == version_id:
            continue
        hashvalues = text_signature(text)
        if hashvalues is None:
            emptied.append((case_id, kind))
        else:
            signed.append(Signed(case_id, kind, version_id, hashvalues))
    return signed, emptied


def near_duplicates_index(*, case_ids: Collection[int]) -> int:
    """Bring the index up to date for these cases' current notes and dialogues, and store
    their near-duplicates among every case. Hashing is done before the transaction. Returns
    how many texts were (re)indexed."""
    case_ids = list(case_ids)
    signed: list[Signed] = []
    emptied: list[tuple[int, str]] = []
    for chunk in _chunks(case_ids):
        found, empty = _stale_current_texts(chunk)
        signed += found
        emptied += empty
    return _index_store(signed, emptied)


def near_duplicates_index_version(*, version: ArtefactVersion) -> int:
    """near_duplicates_index for a version just written as its case's current note or dialogue,
    from its text in hand: 1 when it was indexed, 0 when the index holds a newer version."""
    hashvalues = text_signature(version.text)
    newer = TextSignature.objects.filter(case_id=version.case_id, kind=version.kind, version_id__gt=version.pk)
    if hashvalues is None:
        return _index_store([], [(version.case_id, version.kind)], unless=newer)
    return _index_store([Signed(version.case_id, version.kind, version.pk, hashvalues)], [], unless=newer)


def _index_store(
    signed: list[Signed], emptied: list[tuple[int, str]], *, unless: QuerySet[TextSignature] | None = None
) -> int:
    """Replace the signatures, bands and pairs of these texts, in one transaction; returns how
    many were signed. Nothing is replaced when `unless` finds a row (a newer version's writer
    indexed it first: its signature stays)."""
    if not signed and not emptied:
        return 0
    with transaction.atomic():
        if unless is not None and unless.exists():
            return 0
        _forget([(s.case_id, s.kind) for s in signed] + emptied)
        TextSignature.objects.bulk_create(
            TextSignature(case_id=s.case_id, kind=s.kind, version_id=s.version_id, hashvalues=s.hashvalues.tobytes())
            for s in signed
        )
        _bands_store(signed)
        _pairs_store(signed)
    return len(signed)


def near_duplicates_index_version_on_commit(*, version: ArtefactVersion) -> None:
    """near_duplicates_index_version once the current transaction commits, as robust as
    near_duplicates_index_on_commit."""
    transaction.on_commit(lambda: near_duplicates_index_version(version=version), robust=True)


def near_duplicates_index_on_commit(*, case_ids: Collection[int]) -> None:
    """Index the cases once the current transaction commits (at once outside one). `robust`:
    a failure (two writers indexing one case at once, say) is logged and leaves the index one
    version behind, never fails the write that called it; `manage.py near_duplicates` catches up."""
    ids = list(case_ids)
    transaction.on_commit(lambda: near_duplicates_index(case_ids=ids), robust=True)


def _forget(keys: list[tuple[int, str]]) -> None:
    """Drop the signatures, bands and pairs of these (case, kind)."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for case_id, kind in keys:
        by_kind[kind].append(case_id)
    for kind, ids in by_kind.items():
        for chunk in _chunks(ids):
            TextSignature.objects.filter(kind=kind, case_id__in=chunk).delete()
            SignatureBand.objects.filter(kind=kind, case_id__in=chunk).delete()
            NearDuplicatePair.objects.filter(Q(case_id__in=chunk) | Q(other_id__in=chunk), kind=kind).delete()


def _bands_store(signed: list[Signed]) -> None:
    """Nine or so rows per text: inserted with executemany, as building a model instance per
    row took most of the indexing time."""
    table = connection.ops.quote_name(SignatureBand._meta.db_table)
    sql = f"INSERT INTO {table} (case_id, kind, key) VALUES (%s, %s, %s)"  # noqa: S608 (the table name is ours)
    rows = ((s.case_id, s.kind, key) for s in signed for key in band_keys(s.hashvalues))
    with connection.cursor() as cursor:
        while chunk := list(islice(rows, 5000)):
            cursor.executemany(sql, chunk)


def _candidates(signed: list[Signed], kind: str) -> dict[int, set[int]]:
    """{case id of a new signature: the other cases that share one of its band keys}."""
    owners: dict[int, set[int]] = defaultdict(set)
    mine = {s.case_id: band_keys(s.hashvalues) for s in signed}
    for chunk in _chunks({key for keys in mine.values() for key in keys}):
        for key, case_id in SignatureBand.objects.filter(kind=kind, key__in=chunk).values_list("key", "case_id"):
            owners[key].add(case_id)
    return {case_id: set().union(*(owners[key] for key in keys)) - {case_id} for case_id, keys in mine.items()}


def _signatures_of(case_ids: Iterable[int], kind: str) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    for chunk in _chunks(case_ids):
        rows = TextSignature.objects.filter(kind=kind, case_id__in=chunk).values_list("case_id", "hashvalues")
        found.update((case_id, _hashvalues(raw)) for case_id, raw in rows)
    return found


def _pairs_store(signed: list[Signed]) -> None:
    """Store, both ways, every pair of a new signature and a candidate at or above the threshold."""
    threshold, pairs = _threshold(), {}
    for kind in NEAR_DUPLICATE_KINDS:
        of_kind = [s for s in signed if s.kind == kind]
        candidates = _candidates(of_kind, kind)
        others = _signatures_of({other for ids in candidates.values() for other in ids}, kind)
        for s in of_kind:
            for other in candidates[s.case_id]:
                score = similarity(s.hashvalues, others[other])
                if score >= threshold:
                    pairs[(s.case_id, other, kind)] = score
                    pairs[(other, s.case_id, kind)] = score
    NearDuplicatePair.objects.bulk_create(
        (NearDuplicatePair(case_id=a, other_id=b, kind=k, similarity=score) for (a, b, k), score in pairs.items()),
        batch_size=2000,
    )


def near_duplicates_index_all() -> int:
    """Index every case whose current note or dialogue has no up-to-date signature (cases
    from before the index existed, or a write whose indexing failed)."""
    return sum(near_duplicates_index(case_ids=chunk) for chunk in _chunks(Case.objects.values_list("id", flat=True)))


def near_duplicates_rebuild() -> int:
    """Recompute every band key and pair from the stored signatures, without hashing text
    again. Returns the number of signatures read."""
    with transaction.atomic():
        SignatureBand.objects.all().delete()
        NearDuplicatePair.objects.all().delete()
        signed = [
            Signed(case_id, kind, version_id, _hashvalues(raw))
            for case_id, kind, version_id, raw in TextSignature.objects.values_list(
                "case_id", "kind", "version_id", "hashvalues"
            ).iterator(chunk_size=2000)
        ]
        _bands_store(signed)
        _pairs_store(signed)
    return len(signed)
