"""Export splits an ML engineer can trust: no ICD category in two splits by default,
in-context examples in the split of the pairs made from them, and a card that proves
both from the exported rows and says which model made the pairs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation.models import AgentCall, InContextExample
from review.datasets.export import ExportOptions, dataset_export_write
from review.datasets.forms import ExportForm
from review.datasets.splits import SplitPlan
from tests.factories import IcdCodeFactory, LlmEndpointFactory, approved_pair_create

pytestmark = pytest.mark.django_db
SPLIT_NAMES = ("train", "validation", "test")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _export(out: Path, **options) -> dict[str, list[dict]]:
    dataset_export_write(options=ExportOptions(profile="full", **options), out=out)
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in (out / "data").glob("*.jsonl")
    }


def _card(out: Path) -> str:
    return (out / "README.md").read_text(encoding="utf-8")


def _card_rows(card: str, title: str) -> dict[str, list[str]]:
    section = card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("|")]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows[2:]}


def _call(case, *, endpoint, agent: str = "note_writer", model: str = "") -> AgentCall:
    return AgentCall.objects.create(
        case=case,
        agent=agent,
        endpoint=endpoint,
        endpoint_name=endpoint.name,
        model=model or endpoint.default_model,
        request_messages=[],
    )


def _made_from(case, example, *, endpoint) -> None:
    """`case` was generated with `example` shown as an in-context example."""
    InContextExample.objects.create(call=_call(case, endpoint=endpoint), case=case, example_case=example, position=1)


def test_by_default_no_icd_category_is_in_two_splits_and_the_card_shows_it(tmp_path):
    for category in range(12):
        for child in ("0", "1", "9"):
            approved_pair_create(code=IcdCodeFactory(code=f"E{category:02d}.{child}", chapter="4"))

    out = tmp_path / "out"
    data = _export(out, split=SplitPlan(mode="grouped", ratios=(0.6, 0.2, 0.2), seed=1))

    splits_of_category: dict[str, set[str]] = {}
    for split, rows in data.items():
        for row in rows:
            splits_of_category.setdefault(row["icd10"].split(".")[0], set()).add(split)
    assert len(splits_of_category) == 12
    assert all(len(splits) == 1 for splits in splits_of_category.values())
    assert all(data[split] for split in SPLIT_NAMES)
    card = _card(out)
    assert "Grouping level: **category**" in card
    assert "**0** category group(s) in more than one split" in card
    levels = _card_rows(card, "Splits")
    assert levels["category (this export's level)"] == ["12", "0"]
    assert levels["code"] == ["36", "0"]


def test_the_card_counts_the_groups_a_stratified_split_spreads(tmp_path):
    code = IcdCodeFactory(code="F32.9", chapter="5")
    for _ in range(10):
        approved_pair_create(code=code)

    out = tmp_path / "out"
    _export(out, split=SplitPlan(mode="stratified", ratios=(0.6, 0.2, 0.2)))

    assert _card_rows(_card(out), "Splits")["code"] == ["1", "1"]


def _split_of(data: dict[str, list[dict]], case) -> str:
    return next(split for split, rows in data.items() if any(row["case_id"] == case.pk for row in rows))


def test_an_example_and_the_pairs_made_from_it_land_in_one_split(tmp_path):
    endpoint = LlmEndpointFactory(name="provider")
    cases = [approved_pair_create(code=IcdCodeFactory(code=f"G{index:02d}.0", chapter="6")) for index in range(20)]
    example, made = cases[0], [cases[7], cases[13]]
    for case in made:
        _made_from(case, example, endpoint=endpoint)

    apart_seen = False
    for seed in range(6):
        plan = SplitPlan(mode="grouped", ratios=(0.6, 0.2, 0.2), seed=seed)
        kept = _export(tmp_path / f"kept{seed}", split=plan)
        assert {_split_of(kept, case) for case in (example, *made)} == {_split_of(kept, example)}
        card = _card(tmp_path / f"kept{seed}")
        assert _card_rows(card, "In-context examples")["Example links across two splits"] == ["0"]
        assert "merged the 20 category groups into 18; the largest holds 15% of the pairs" in card
        assert "Warning" not in card

        loose = _export(tmp_path / f"loose{seed}", split=plan, keep_examples_together=False)
        if len({_split_of(loose, case) for case in (example, *made)}) > 1:
            apart_seen = True
            card = _card(tmp_path / f"loose{seed}")
            assert _card_rows(card, "In-context examples")["Example links across two splits"] != ["0"]
    assert apart_seen  # without the option the pairs do get separated: the check above can fail

    row = next(row for row in kept[_split_of(kept, made[0])] if row["case_id"] == made[0].pk)
    assert row["in_context_examples"] == {"note_writer": [example.pk]}
    assert _card_rows(card, "In-context examples")["Distinct example cases"] == ["1"]


def test_the_card_warns_when_links_merge_most_pairs_into_one_group(tmp_path):
    endpoint = LlmEndpointFactory(name="provider")
    cases = [approved_pair_create(code=IcdCodeFactory(code=f"D{index:02d}.0", chapter="3")) for index in range(5)]
    for made, example in zip(cases[1:], cases, strict=False):
        _made_from(made, example, endpoint=endpoint)

    out = tmp_path / "out"
    data = _export(out, split=SplitPlan(mode="grouped"))

    assert [len(data.get(split, [])) for split in SPLIT_NAMES] == [5, 0, 0]
    card = _card(out)
    assert "merged the 5 category groups into 1; the largest holds 100% of the pairs" in card
    assert "**Warning:**" in card


def test_the_card_states_the_share_of_pairs_made_by_each_model(tmp_path):
    real = LlmEndpointFactory(name="provider", default_model="gpt-x")
    demo = LlmEndpointFactory(name="local-demo", default_model="tiny", is_local_demo=True)
    for endpoint in (real, real, demo):
        case = approved_pair_create()
        _call(case, endpoint=endpoint, agent="note_writer")
        _call(case, endpoint=endpoint, agent="dialogue_generator")
    approved_pair_create()  # imported: no model

    out = tmp_path / "out"
    _export(out)

    shares = _card_rows(_card(out), "Pairs by model")
    assert shares["gpt-x"] == ["provider", "2", "50.0%"]
    assert shares["tiny"] == ["local-demo (local demo)", "1", "25.0%"]
    assert shares["none (imported or hand-made)"] == ["", "1", "25.0%"]


def test_the_command_accepts_the_grouping_options_and_writes_what_the_service_writes(tmp_path):
    endpoint = LlmEndpointFactory(name="provider")
    cases = [
        approved_pair_create(code=IcdCodeFactory(code=f"H{index:02d}.0", chapter="7", block=f"H{index // 3}"))
        for index in range(9)
    ]
    _made_from(cases[1], cases[8], endpoint=endpoint)

    call_command(
        "export_dataset",
        "--profile",
        "full",
        "--split",
        "grouped",
        "--group-by",
        "block",
        "--no-keep-examples-together",
        "--out",
        str(tmp_path / "cli.zip"),
        stdout=io.StringIO(),
    )
    options = ExportOptions(
        profile="full", split=SplitPlan(mode="grouped", group_level="block"), keep_examples_together=False
    )
    dataset_export_write(options=options, out=tmp_path / "service.zip")

    assert (tmp_path / "cli.zip").read_bytes() == (tmp_path / "service.zip").read_bytes()
    with pytest.raises(CommandError, match="grouped splits only"):
        call_command("export_dataset", "--stratify-by-chapter", "--out", str(tmp_path / "x"))


def test_the_export_form_takes_the_grouping_options():
    fields = {"fmt": "jsonl", "profile": "full", "split": "grouped", "ratios": "0.8,0.1,0.1", "seed": "0"}
    form = ExportForm({**fields, "licence": "other", "group_level": "chapter", "keep_examples_together": "on"})
    assert form.is_valid(), form.errors
    options = form.cleaned_data["options"]
    assert (options.split.group_level, options.keep_examples_together) == ("chapter", True)

    refused = ExportForm({**fields, "licence": "other", "group_level": "chapter", "stratify_by_chapter": "on"})
    assert not refused.is_valid()
    assert re.search("chapter is the group", str(refused.errors))


def test_the_background_job_reads_back_the_grouping_options():
    options = ExportOptions(
        split=SplitPlan(mode="grouped", group_level="block", stratify_by_chapter=True), keep_examples_together=False
    )

    assert ExportOptions.from_params(json.loads(json.dumps(options.to_params()))) == options
