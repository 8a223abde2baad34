"""Reading an import file, as a stream, in two passes.

`file_validate` reads every row and reports what is wrong with it as (line, column,
problem); a file-level problem (size, encoding, header, delimiter) raises ImportRefused.
Nothing is written during this pass, which keeps the import all or nothing.
`rows_accepted` then reads the file again and yields the rows that passed, parsed, for
the writer to store in short transactions. Neither pass holds the file, or all its rows,
in memory: the file is read line by line, and the first pass keeps only a fingerprint
and a code per row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from generation.errors import DomainError
from generation.models import NOTE_FIELDS, IcdCode, code_compact
from generation.services.catalogue import codes_by_compact, retired_code_message, unbillable_code_message
from review.datasets.imports.parsing import Parsed, dialogue_parse, note_parse

IMPORT_FORMATS = ("medsynth", "aci", "jsonl")
MAX_CELL_CHARS = 100_000
# A row is a few cells of at most MAX_CELL_CHARS: a longer line (or CSV cell) refuses the file,
# so an unbroken run of bytes is never read into memory whole, whatever IMPORT_MAX_BYTES allows.
MAX_LINE_CHARS = 20 * MAX_CELL_CHARS
# Accepted header spellings (compared stripped and lowercased) per logical column.
_COLUMN_NAMES = {
    "note": ("note",),
    "dialogue": ("dialogue", "conversation"),
    "code": ("icd10", "code", "icd10_code", "icd_10"),
    "description": ("icd10_desc", "description"),
}
_REQUIRED = {"medsynth": ("note", "dialogue", "code"), "aci": ("note", "dialogue")}


class ImportRefused(DomainError):
    """The file cannot be imported; nothing was written."""

    def __init__(self, message: str, report: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.report = report or []


@dataclass
class ImportRow:
    line: int
    code: IcdCode | None  # None: imported with the code to be assigned
    note_text: str
    dialogue_text: str
    note: Parsed
    dialogue: Parsed
    role: str = ""
    scenario: dict[str, Any] | None = None


@dataclass
class RawRow:
    line: int
    code: str
    note_text: str
    dialogue_text: str
    note_content: dict[str, Any] | None = None
    dialogue_content: dict[str, Any] | None = None
    role: str = ""
    scenario: dict[str, Any] | None = None


@dataclass(frozen=True)
class CodePolicy:
    """How the rows' codes are read. `to_be_assigned`: a row without a code (or with one that is
    not in the current catalogue) is imported without one, for a reviewer to assign before
    approval. `refuse_unbillable`: a non-billable or retired code is a problem of its row,
    not a warning (IMPORT_REFUSE_UNBILLABLE_CODES)."""

    default_code: str = ""
    to_be_assigned: bool = False
    refuse_unbillable: bool = False

    @classmethod
    def from_settings(cls, *, default_code: str = "", to_be_assigned: bool = False) -> CodePolicy:
        return cls(
            default_code=default_code,
            to_be_assigned=to_be_assigned,
            refuse_unbillable=settings.IMPORT_REFUSE_UNBILLABLE_CODES,
        )


@dataclass
class Validation:
    """What the first pass found: the problems (rows refused), the warnings (rows imported,
    to be looked at), and the code of every row that can be imported."""

    report: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    accepted: dict[int, IcdCode | None] = field(default_factory=dict)  # line -> code (None: to be assigned)

    def problem(self, line: int, column: str, problem: str) -> None:
        self.report.append({"line": line, "column": column, "problem": problem})

    def warning(self, line: int, column: str, problem: str) -> None:
        self.warnings.append({"line": line, "column": column, "problem": problem, "severity": "warning"})

    @property
    def full_report(self) -> list[dict[str, Any]]:
        """Problems and warnings, in line order."""
        return sorted(self.report + self.warnings, key=lambda entry: entry["line"])


def _file_check(path: Path) -> None:
    size = path.stat().st_size
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportRefused(
            f"the file is {size:,} bytes; the limit is {settings.IMPORT_MAX_BYTES:,} (IMPORT_MAX_BYTES)"
        )
    if _is_blank(path):
        raise ImportRefused("the file is empty")


def _is_blank(path: Path) -> bool:
    with path.open("rb") as data:
        while chunk := data.read(64 * 1024):
            if chunk.strip():
                return False
    return True


def _text_lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded as they are read (line endings kept, as csv wants them)."""
    with path.open("rb") as data, io.TextIOWrapper(data, encoding="utf-8-sig", newline="") as text:
        number = 0
        try:
            while line := text.readline(MAX_LINE_CHARS + 1):
                number += 1
                if len(line) > MAX_LINE_CHARS:
                    raise ImportRefused(_line_too_long_message(number))
                yield line
        except UnicodeDecodeError as error:
            raise ImportRefused(_not_utf8_message(path)) from error


def _line_too_long_message(line: int) -> str:
    return (
        f"line {line}: longer than {MAX_LINE_CHARS:,} characters; a row's note and dialogue may have "
        f"{MAX_CELL_CHARS:,} characters each"
    )


def _not_utf8_message(path: Path) -> str:
    """Where the first byte that is not UTF-8 is (the decoder reports it by chunk, not by line)."""
    offset = 0
    with path.open("rb") as data:
        for line, raw in enumerate(data, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return f"line {line}: the file is not UTF-8 text (byte {offset + error.start}); save it as UTF-8"
            offset += len(raw)
    return "the file is not UTF-8 text; save it as UTF-8"


def _column_map(header: list[str], fmt: str, *, needs_code: bool) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    found = {key: next((names.index(n) for n in options if n in names), -1) for key, options in _COLUMN_NAMES.items()}
    required = _REQUIRED[fmt] + (("code",) if needs_code and fmt == "aci" else ())
    missing = [key for key in required if found[key] < 0]
    if missing:
        raise ImportRefused(_missing_columns_message(header, missing, fmt))
    return {key: index for key, index in found.items() if index >= 0}


def _missing_columns_message(header: list[str], missing: list[str], fmt: str) -> str:
    joined = ",".join(header)
    for delimiter, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if len(header) == 1 and delimiter in joined:
            return f"the header is separated by {label}, not commas; save the file as comma-separated CSV"
    if fmt == "aci" and missing == ["code"]:
        return (
            "an ACI-Bench file has no code column: give one code for every row (--code E11.9, or the Code "
            "field of the import page), import it with the code to be assigned (--code-to-be-assigned), "
            "or add a 'code' column"
        )
    expected = {"medsynth": "Note (or ' Note'), Dialogue, ICD10[, ICD10_desc]", "aci": "dialogue, note[, code]"}[fmt]
    wanted = ", ".join(_COLUMN_NAMES[key][0] for key in missing)
    return f"missing column(s) {wanted}; expected {expected}; found {joined[:200]!r}"


def _csv_rows(lines: Iterator[str], fmt: str, *, policy: CodePolicy) -> Iterator[RawRow | tuple[int, str, str]]:
    csv.field_size_limit(MAX_LINE_CHARS)  # a longer cell (over several lines) is a csv.Error
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except csv.Error as error:
        raise ImportRefused(f"line 1: the header is not valid CSV ({error})") from error
    columns = _column_map(header, fmt, needs_code=not (policy.default_code or policy.to_be_assigned))
    previous_end = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ImportRefused(f"line {reader.line_num}: not valid CSV ({error})") from error
        line, previous_end = previous_end + 1, reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            yield line, "", f"expected {len(header)} columns, found {len(values)}"
            continue

        def cell(key: str, values: list[str] = values) -> str:
            return values[columns[key]] if key in columns else ""

        yield RawRow(
            line=line,
            code=cell("code") or policy.default_code,
            note_text=cell("note"),
            dialogue_text=cell("dialogue"),
        )


def _jsonl_rows(lines: Iterator[str]) -> Iterator[RawRow | tuple[int, str, str]]:
    for line, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as error:
            yield line, "", f"not valid JSON ({error.msg} at column {error.colno})"
            continue
        if not isinstance(row, dict):
            yield line, "", "expected a JSON object per line"
            continue
        missing = [key for key in ("icd10", "note_text", "dialogue_text") if not isinstance(row.get(key), str)]
        if missing:
            yield line, ",".join(missing), "missing field(s) of the full export profile"
            continue
        note_content = {key: row[key] for key in NOTE_FIELDS if isinstance(row.get(key), str) and row[key]}
        turns = row.get("turns")
        yield RawRow(
            line=line,
            code=row["icd10"],
            note_text=row["note_text"],
            dialogue_text=row["dialogue_text"],
            note_content=note_content or None,
            dialogue_content={"turns": turns} if isinstance(turns, list) and turns else None,
            role=str(row.get("role") or ""),
            scenario=row.get("scenario") if isinstance(row.get("scenario"), dict) else None,
        )


def _cell_problems(raw: RawRow, policy: CodePolicy) -> list[tuple[str, str]]:
    problems = []
    for column, value in (("note", raw.note_text), ("dialogue", raw.dialogue_text), ("code", raw.code)):
        if column == "code" and policy.to_be_assigned and not value.strip():
            continue
        if not value.strip():
            problems.append((column, "empty"))
        elif len(value) > MAX_CELL_CHARS:
            problems.append((column, f"{len(value):,} characters; the limit is {MAX_CELL_CHARS:,}"))
    return problems


def _raw_rows(*, path: Path, fmt: str, policy: CodePolicy) -> Iterator[RawRow | tuple[int, str, str]]:
    if fmt not in IMPORT_FORMATS:
        raise ImportRefused(f"unknown format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    _file_check(path)
    lines = _text_lines(path)
    return _jsonl_rows(lines) if fmt == "jsonl" else _csv_rows(lines, fmt, policy=policy)


def file_validate(*, path: Path, fmt: str, policy: CodePolicy | None = None) -> Validation:
    """Read every row and report its problems; raises ImportRefused for a file-level problem."""
    result = Validation()
    candidates: list[tuple[int, str]] = []  # (line, code as written) of the rows without a problem so far
    seen: dict[bytes, int] = {}
    policy = policy or CodePolicy.from_settings()
    for item in _raw_rows(path=path, fmt=fmt, policy=policy):
        result.total += 1
        if isinstance(item, tuple):
            result.problem(*item)
            continue
        problems = _cell_problems(item, policy)
        for column, problem in problems:
            result.problem(item.line, column, problem)
        fingerprint = hashlib.sha256(f"{item.note_text.strip()}\x00{item.dialogue_text.strip()}".encode()).digest()
        if fingerprint in seen:
            result.problem(item.line, "", f"duplicate of line {seen[fingerprint]}")
            continue
        seen[fingerprint] = item.line
        if not problems:
            candidates.append((item.line, item.code))
    if result.total == 0:
        raise ImportRefused("the file has a header but no rows")
    _resolve_codes(candidates, result, policy)
    return result


_TO_BE_ASSIGNED = "imported with the code to be assigned: a reviewer assigns it before approval"


def _resolve_codes(candidates: list[tuple[int, str]], result: Validation, policy: CodePolicy) -> None:
    """Each candidate row's code: a billable code of the catalogue is accepted as it is; a
    non-billable or retired one with a warning, or refused when the policy says so."""
    known = codes_by_compact({code_compact(code) for _line, code in candidates if code.strip()})
    for line, written in candidates:
        if not written.strip():
            result.accepted[line] = None  # no code in the row, and the import assigns none
            continue
        code = known.get(code_compact(written))
        concern = retired_code_message(written) if code is None else unbillable_code_message(code)
        if not concern:
            result.accepted[line] = code
        elif policy.refuse_unbillable or (code is None and not policy.to_be_assigned):
            result.problem(line, "code", concern)
        elif code is None:
            result.warning(line, "code", f"{concern}; {_TO_BE_ASSIGNED}")
            result.accepted[line] = None
        else:
            result.warning(line, "code", f"{concern}; imported with it, a reviewer can change it")
            result.accepted[line] = code


def rows_accepted(
    *, path: Path, fmt: str, validation: Validation, policy: CodePolicy | None = None
) -> Iterator[ImportRow]:
    """The rows `file_validate` accepted, read again from the file and parsed one by one."""
    for item in _raw_rows(path=path, fmt=fmt, policy=policy or CodePolicy.from_settings()):
        if isinstance(item, tuple) or item.line not in validation.accepted:
            continue
        note = Parsed(content=item.note_content) if item.note_content else note_parse(item.note_text)
        dialogue = (
            Parsed(content=item.dialogue_content) if item.dialogue_content else dialogue_parse(item.dialogue_text)
        )
        yield ImportRow(
            line=item.line,
            code=validation.accepted[item.line],
            note_text=item.note_text,
            dialogue_text=item.dialogue_text,
            note=note,
            dialogue=dialogue,
            role=item.role,
            scenario=item.scenario,
        )
