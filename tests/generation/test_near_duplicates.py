"""The near-duplicate index: notes and dialogues of every case compared across codes,
kept up to date as versions are written or imported."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash
from django.core.management import call_command

from generation.models import ArtefactKind, Case, NearDuplicatePair, SignatureBand, TextSignature, VersionSource
from generation.selectors import near_duplicate_clusters, near_duplicates_of_case
from generation.services.cases import artefact_version_create
from generation.services.near_duplicates import NUM_PERM, SCHEME, text_shingles, text_signature
from review.datasets.imports import dataset_import_file
from tests.factories import CaseFactory, ClinicianFactory, IcdCodeFactory
from tests.synthetic_text import lightly_edited, synthetic_text

pytestmark = pytest.mark.django_db


def _jaccard(a: str, b: str) -> float:
    """The exact similarity the MinHash estimates, computed without it."""
    x, y = text_shingles(a), text_shingles(b)
    return len(x & y) / len(x | y)


def test_shingles_are_the_ascii_words_of_the_lower_cased_text() -> None:
    # "İ" lower-cases to "i" and a combining dot; "ſ" stays outside ASCII; the Kelvin sign is a "k".
    assert text_shingles("\u0130stanbul \u017ftop, \u212a caf\u00e9 12-3") == {
        b"i stanbul top",
        b"stanbul top k",
        b"top k caf",
        b"k caf 12",
        b"caf 12 3",
    }


def test_a_signature_is_datasketchs_own_minhash_of_the_shingles() -> None:
    """Signatures stored before the hashing was sped up stay comparable with new ones."""
    for text in [synthetic_text(seed, words=300) for seed in range(5)] + ["Fever. Cough, two days!", "one two"]:
        plain = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME)
        plain.update_batch(text_shingles(text))
        signature = text_signature(text)
        assert signature is not None
        assert np.array_equal(signature, plain.hashvalues)


def _import(tmp_path: Path, rows: list[tuple[str, str, str]]) -> list[Case]:
    path = tmp_path / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([" Note", "Dialogue", "ICD10", "ICD10_desc"])
        writer.writerows([note, dialogue, code, ""] for note, dialogue, code in rows)
    batch = dataset_import_file(path=path, fmt="medsynth").batch
    return list(batch.cases.order_by("id"))


def _generated_case(code_text: str, note: str, dialogue: str) -> Case:
    case = CaseFactory(code=IcdCodeFactory(code=code_text))
    for kind, text in ((ArtefactKind.NOTE, note), (ArtefactKind.DIALOGUE, dialogue)):
        artefact_version_create(case=case, kind=kind, content={}, source=VersionSource.IMPORTED, text=text)
    return case


@pytest.fixture
def imported_and_edited(tmp_path, django_capture_on_commit_callbacks):
    """An imported pair (L25.9), a generated case of another code (R05.9) whose note a reviewer
    replaced by a lightly edited copy of the imported note, and an unrelated case (M54.50)."""
    IcdCodeFactory(code="L25.9")
    original_note = synthetic_text(1)
    with django_capture_on_commit_callbacks(execute=True):
        (imported,) = _import(tmp_path, [(original_note, synthetic_text(2), "L259")])
        copy = _generated_case("R05.9", synthetic_text(3), synthetic_text(4))
        unrelated = _generated_case("M54.50", synthetic_text(5), synthetic_text(6))
        edited_note = lightly_edited(original_note, changes=3)
        artefact_version_create(
            case=copy,
            kind=ArtefactKind.NOTE,
            content={},
            source=VersionSource.HUMAN_EDIT,
            author=ClinicianFactory(),
            text=edited_note,
        )
    return imported, copy, unrelated, _jaccard(original_note, edited_note)


def test_an_edited_copy_of_an_imported_note_is_found_across_codes(imported_and_edited):
    imported, copy, unrelated, exact = imported_and_edited
    assert imported.code.code != copy.code.code

    (match,) = near_duplicates_of_case(case=imported)

    assert match.case == copy
    assert set(match.similarity) == {ArtefactKind.NOTE}
    # MinHash with 128 permutations estimates within a few hundredths.
    assert match.similarity[ArtefactKind.NOTE] == pytest.approx(exact, abs=0.1)
    assert [m.case for m in near_duplicates_of_case(case=copy)] == [imported]
    assert near_duplicates_of_case(case=unrelated) == []


def test_clusters_are_the_connected_cases_within_the_set_asked_about(imported_and_edited):
    imported, copy, unrelated, _ = imported_and_edited

    assert near_duplicate_clusters(case_ids=[imported.pk, copy.pk, unrelated.pk]) == [frozenset({imported.pk, copy.pk})]
    # A pair with one end outside the set is no cluster of the set.
    assert near_duplicate_clusters(case_ids=[imported.pk, unrelated.pk]) == []


def test_an_edit_that_makes_the_note_different_removes_the_pair(
    imported_and_edited, django_capture_on_commit_callbacks
):
    imported, copy, _, _ = imported_and_edited

    with django_capture_on_commit_callbacks(execute=True):
        rewritten = artefact_version_create(
            case=copy,
            kind=ArtefactKind.NOTE,
            content={},
            source=VersionSource.HUMAN_EDIT,
            author=ClinicianFactory(),
            text=synthetic_text(99),
        )

    assert near_duplicates_of_case(case=imported) == []
    assert TextSignature.objects.get(case=copy, kind=ArtefactKind.NOTE).version == rewritten


def test_two_rows_of_one_import_are_compared_with_each_other(tmp_path, django_capture_on_commit_callbacks):
    IcdCodeFactory(code="L25.9")
    IcdCodeFactory(code="R05.9")
    dialogue = synthetic_text(10)

    with django_capture_on_commit_callbacks(execute=True):
        first, second = _import(
            tmp_path,
            [(synthetic_text(11), dialogue, "L259"), (synthetic_text(12), lightly_edited(dialogue, seed=1), "R059")],
        )

    (match,) = near_duplicates_of_case(case=first)
    assert match.case == second
    assert set(match.similarity) == {ArtefactKind.DIALOGUE}


def test_the_rebuild_finds_the_same_pairs_from_the_stored_signatures_alone(imported_and_edited, monkeypatch):
    imported, copy, _, _ = imported_and_edited
    before = set(NearDuplicatePair.objects.values_list("case_id", "other_id", "kind"))
    SignatureBand.objects.all().delete()
    NearDuplicatePair.objects.all().delete()

    def no_hashing(text):
        raise AssertionError("the rebuild hashed a text again")

    monkeypatch.setattr("generation.services.near_duplicates.text_signature", no_hashing)
    call_command("near_duplicates", "--rebuild", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert set(NearDuplicatePair.objects.values_list("case_id", "other_id", "kind")) == before
    assert (imported.pk, copy.pk, ArtefactKind.NOTE) in before


def test_the_command_indexes_cases_written_before_the_index_existed():
    note = synthetic_text(70)
    first = _generated_case("J02.9", note, synthetic_text(71))  # no commit, so the hook did not run
    second = _generated_case("R05.9", lightly_edited(note), synthetic_text(72))
    assert not TextSignature.objects.exists()

    call_command("near_duplicates", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert TextSignature.objects.count() == 4
    assert [match.case for match in near_duplicates_of_case(case=first)] == [second]


def test_indexing_an_older_version_after_a_newer_one_keeps_the_newer():
    from generation.services.near_duplicates import near_duplicates_index_version

    case = CaseFactory(code=IcdCodeFactory(code="R05.9"))
    older, newer = (
        artefact_version_create(
            case=case, kind=ArtefactKind.NOTE, content={}, source=VersionSource.IMPORTED, text=synthetic_text(n)
        )
        for n in (7, 8)
    )  # not indexed yet: their on-commit callbacks are not run
    assert near_duplicates_index_version(version=newer) == 1
    # Two writers' indexing, the older one last (it was slower): the newer signature stays.
    assert near_duplicates_index_version(version=older) == 0
    assert list(TextSignature.objects.filter(case=case).values_list("version_id", flat=True)) == [newer.pk]
