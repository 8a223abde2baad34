"""The export's near-duplicate policy: keep all pairs and report the clusters, or keep one
pair per cluster; the card states the clusters and what was dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from generation.services.near_duplicates import near_duplicates_index
from review.datasets.export import ExportFilters, ExportOptions, dataset_export_write
from review.datasets.splits import SplitPlan
from tests.factories import IcdCodeFactory, approved_pair_create
from tests.synthetic_text import lightly_edited, synthetic_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def pairs():
    """Approved pairs: `original` and `copy` (another code, a lightly edited note) form a
    cluster; `alone` is unlike both."""
    note = synthetic_text(40)
    original = approved_pair_create(code=IcdCodeFactory(code="J02.9"), note_text=note, dialogue_text=synthetic_text(41))
    copy = approved_pair_create(
        code=IcdCodeFactory(code="R05.9"), note_text=lightly_edited(note), dialogue_text=synthetic_text(42)
    )
    alone = approved_pair_create(
        code=IcdCodeFactory(code="E11.9"), note_text=synthetic_text(43), dialogue_text=synthetic_text(44)
    )
    near_duplicates_index(case_ids=[original.pk, copy.pk, alone.pk])
    return original, copy, alone


def _exported_notes(out: Path) -> list[str]:
    rows = []
    for path in sorted((out / "data").glob("*.jsonl")):
        rows += [json.loads(line)["Note"] for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def _card(out: Path) -> str:
    return (out / "README.md").read_text(encoding="utf-8")


def test_keep_all_exports_every_pair_and_reports_the_cluster(tmp_path, pairs):
    original, copy, alone = pairs
    out = tmp_path / "all"

    result = dataset_export_write(options=ExportOptions(near_duplicates="keep_all"), out=out)

    assert result.rows == 3
    assert sorted(_exported_notes(out)) == sorted(p.versions.get(kind="note").text for p in pairs)
    card = _card(out)
    assert "- Clusters among the selected pairs: 1 (2 pairs)" in card
    assert "- Policy: keep all pairs and report; dropped: 0 pairs" in card


def test_keep_one_drops_all_but_the_oldest_pair_of_each_cluster(tmp_path, pairs):
    original, copy, alone = pairs
    out = tmp_path / "one"

    result = dataset_export_write(options=ExportOptions(near_duplicates="keep_one"), out=out)

    assert result.rows == 2
    kept = {original.versions.get(kind="note").text, alone.versions.get(kind="note").text}
    assert set(_exported_notes(out)) == kept
    card = _card(out)
    assert "- Clusters among the selected pairs: 1 (2 pairs)" in card
    assert "- Policy: keep one pair per cluster (the oldest); dropped: 1 pairs" in card


def test_a_cluster_counts_only_when_the_export_selects_both_of_its_pairs(tmp_path, pairs):
    out = tmp_path / "filtered"

    result = dataset_export_write(
        options=ExportOptions(near_duplicates="keep_one", filters=ExportFilters(codes=("J02.9", "E11.9"))), out=out
    )

    assert result.rows == 2
    assert "- Clusters among the selected pairs: 0 (0 pairs)" in _card(out)


def test_the_command_takes_the_policy(tmp_path, pairs):
    out = tmp_path / "cli"
    call_command("export_dataset", "--out", str(out), "--near-duplicates", "keep_one", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert len(_exported_notes(out)) == 2


def test_the_export_form_carries_the_policy():
    from review.datasets.forms import ExportForm

    base = {"fmt": "jsonl", "profile": "medsynth", "split": "none", "ratios": "0.8,0.1,0.1", "seed": 0}
    base["licence"] = "other"
    default, chosen = ExportForm(base), ExportForm({**base, "near_duplicates": "keep_one"})
    assert default.is_valid(), default.errors
    assert chosen.is_valid(), chosen.errors
    assert default.cleaned_data["options"].near_duplicates == "keep_all"
    assert chosen.cleaned_data["options"].near_duplicates == "keep_one"
    assert not ExportForm({**base, "near_duplicates": "drop_everything"}).is_valid()


def test_the_clusters_a_split_must_keep_together_are_those_still_exported(pairs):
    from review.datasets.export import approved_pairs
    from review.datasets.near_duplicates import near_duplicates_policy_apply

    original, copy, _ = pairs
    _, keep_all = near_duplicates_policy_apply(cases=approved_pairs(filters=ExportFilters()), policy="keep_all")
    _, keep_one = near_duplicates_policy_apply(cases=approved_pairs(filters=ExportFilters()), policy="keep_one")

    assert keep_all.kept_clusters == [frozenset({original.pk, copy.pk})]
    assert keep_one.kept_clusters == []
    assert keep_one.dropped == frozenset({copy.pk})


def _split_of_notes(out: Path) -> dict[str, str]:
    return {
        json.loads(line)["Note"]: path.stem
        for path in (out / "data").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    }


def test_a_grouped_split_never_puts_one_cluster_in_two_splits(tmp_path, pairs):
    """`original` (J02) and `copy` (R05) are in different ICD categories, so only their
    near-duplicate link keeps them together; with even ratios and ten seeds, chance alone
    would put them together in all ten about once in 59,000 runs."""
    original, copy, _alone = pairs
    for index, code in enumerate(["A09", "B34.9", "C61", "D50.9", "F32.9", "G43.909", "H10.9", "K21.9"]):
        approved_pair_create(
            code=IcdCodeFactory(code=code, chapter=str(index + 1)),
            note_text=synthetic_text(60 + index),
            dialogue_text=synthetic_text(80 + index),
        )
    original_note, copy_note = (pair.versions.get(kind="note").text for pair in (original, copy))
    for seed in range(10):
        out = tmp_path / f"seed-{seed}"
        plan = SplitPlan(mode="grouped", ratios=(0.34, 0.33, 0.33), seed=seed)
        dataset_export_write(options=ExportOptions(split=plan, near_duplicates="keep_all"), out=out)
        splits = _split_of_notes(out)
        assert splits[original_note] == splits[copy_note], f"seed {seed}"
