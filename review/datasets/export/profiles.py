"""The two column profiles of an export.

- `medsynth`: Note, Dialogue, ICD10 (no dot), ICD10_desc — the published MedSynth
  columns, so anything that loads that dataset loads ours. The published CSV's first
  header is ' Note' (a leading space); `original_header` writes it verbatim.
- `full`: everything a researcher needs to audit a pair: code, chapter, role, scenario,
  SOAP sections as fields, dialogue turns, rendered texts, batch, models, prompt
  versions and endpoints per agent, the approved cases each agent was shown as
  in-context examples (`in_context_examples`: {agent: [case ids]}), survey version,
  reviews, agreement and the automatic checks.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from generation.models import NOTE_FIELDS
from review.datasets.export.query import PairRecord, annotation

PROFILES = ("medsynth", "full")
MEDSYNTH_COLUMNS = ("Note", "Dialogue", "ICD10", "ICD10_desc")
ORIGINAL_NOTE_HEADER = " Note"

FULL_COLUMNS: tuple[str, ...] = (
    "case_id",
    "icd10",
    "icd10_compact",
    "icd10_desc",
    "chapter",
    "chapter_title",
    "role",
    "scenario",
    *NOTE_FIELDS,
    "turns",
    "note_text",
    "dialogue_text",
    "batch",
    "batch_id",
    "models",
    "in_context_examples",
    "survey_snapshot_version",
    "reviews",
    "reviewer_agreement",
    "approved_at",
    "note_version",
    "dialogue_version",
    "check_flags",
)
# Fields whose values are objects: JSON text in CSV and Parquet (turns stay a real list in Parquet).
FULL_NESTED = ("scenario", "models", "in_context_examples", "reviews", "check_flags", "turns")

_TURN = pa.struct([("speaker", pa.string()), ("text", pa.string())])
_FULL_TYPES: dict[str, pa.DataType] = {
    "case_id": pa.int64(),
    "batch_id": pa.int64(),
    "survey_snapshot_version": pa.int64(),
    "reviewer_agreement": pa.float64(),
    "note_version": pa.int64(),
    "dialogue_version": pa.int64(),
    "turns": pa.list_(_TURN),
}


def columns(*, profile: str, original_header: bool = False) -> tuple[str, ...]:
    if profile == "full":
        return FULL_COLUMNS
    if original_header:
        return (ORIGINAL_NOTE_HEADER, *MEDSYNTH_COLUMNS[1:])
    return MEDSYNTH_COLUMNS


def parquet_schema(*, profile: str, original_header: bool = False) -> pa.Schema:
    names = columns(profile=profile, original_header=original_header)
    return pa.schema(
        [(name, _FULL_TYPES.get(name, pa.string()) if profile == "full" else pa.string()) for name in names]
    )


def medsynth_row(record: PairRecord, *, original_header: bool = False) -> dict[str, Any]:
    note_column = ORIGINAL_NOTE_HEADER if original_header else "Note"
    return {
        note_column: record.note.text,
        "Dialogue": record.dialogue.text,
        "ICD10": record.code.code_compact,
        "ICD10_desc": record.code.description,
    }


def _reviews(record: PairRecord) -> list[dict[str, Any]]:
    return [
        {
            "stage": decision.stage,
            "reviewer": decision.reviewer.get_username(),
            "action": decision.action,
            "reason": decision.reason,
            "comment": decision.comment,
            "is_adjudication": decision.is_adjudication,
            "decided_at": decision.created_at.isoformat(),
        }
        for decision in record.decisions
    ]


def full_row(record: PairRecord) -> dict[str, Any]:
    case, code, note = record.case, record.code, record.note.content
    turns = [
        {"speaker": str(turn.get("speaker", "")), "text": str(turn.get("text", ""))}
        for turn in record.dialogue.content.get("turns", [])
    ]
    return {
        "case_id": case.pk,
        "icd10": code.code,
        "icd10_compact": code.code_compact,
        "icd10_desc": code.description,
        "chapter": code.chapter,
        "chapter_title": code.chapter_title,
        "role": case.role.name if case.role else "",
        "scenario": record.scenario.content if record.scenario else None,
        **{key: str(note.get(key) or "") for key in NOTE_FIELDS},
        "turns": turns,
        "note_text": record.note.text,
        "dialogue_text": record.dialogue.text,
        "batch": case.batch.name,
        "batch_id": case.batch_id,
        "models": record.models,
        "in_context_examples": record.examples,
        "survey_snapshot_version": case.survey_snapshot.version if case.survey_snapshot else None,
        "reviews": _reviews(record),
        "reviewer_agreement": record.agreement,
        "approved_at": annotation(case, "approved_at").isoformat(),
        "note_version": record.note.number,
        "dialogue_version": record.dialogue.number,
        "check_flags": {"note": record.note.check_flags, "dialogue": record.dialogue.check_flags},
    }


def profile_row(record: PairRecord, *, profile: str, original_header: bool = False) -> dict[str, Any]:
    if profile == "full":
        return full_row(record)
    return medsynth_row(record, original_header=original_header)


def json_text(value: Any) -> str:
    """Stable JSON for a nested value inside a flat file (same value, same bytes)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def flattened(row: dict[str, Any], *, keep_lists: bool) -> dict[str, Any]:
    """A full-profile row with its nested fields as JSON text (CSV), or all but turns (Parquet)."""
    flat = dict(row)
    for key in FULL_NESTED:
        if key in flat and not (keep_lists and key == "turns"):
            flat[key] = None if flat[key] is None else json_text(flat[key])
    return flat
