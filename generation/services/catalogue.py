"""Loading the ICD-10-CM catalogue and the site's own code frequencies."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction

from generation.errors import DomainError
from generation.models import CODE_WRAPPING, IcdCode, code_compact, looks_like_icd9

_BULK = 2000


@dataclass(frozen=True)
class CatalogueLoadResult:
    total: int
    created: int
    billable: int


def _catalogue_rows() -> Iterator[IcdCode]:
    """Every category and subcategory of the tabular list, parents before children."""
    import simple_icd_10_cm as icd  # parses the whole tabular list on import: only when loading

    seen: set[str] = set()
    for code in icd.get_all_codes(True):
        # The package lists a few dozen codes twice; one row each.
        if code in seen or not icd.is_category_or_subcategory(code):
            continue
        seen.add(code)
        ancestors = icd.get_ancestors(code)  # nearest first, ending with block then chapter
        chapter, block = ancestors[-1], ancestors[-2]
        yield IcdCode(
            code=code,
            code_compact=code_compact(code),
            description=icd.get_description(code),
            chapter=chapter,
            chapter_title=icd.get_description(chapter),
            block=block,
            block_title=icd.get_description(block),
            depth=len(ancestors) - 1,
            is_billable=icd.is_leaf(code),
        )


def icd10_catalogue_load() -> CatalogueLoadResult:
    """Insert or refresh the whole catalogue; imported frequencies are kept."""
    existing_before = IcdCode.objects.count()
    import simple_icd_10_cm as icd

    rows = list(_catalogue_rows())
    by_depth: dict[int, list[IcdCode]] = {}
    for row in rows:
        by_depth.setdefault(row.depth, []).append(row)
    with transaction.atomic():
        ids: dict[str, int] = {}
        for depth in sorted(by_depth):
            level = by_depth[depth]
            for row in level:
                parent_code = icd.get_parent(row.code)
                row.parent_id = ids.get(parent_code)
            IcdCode.objects.bulk_create(
                level,
                batch_size=_BULK,
                update_conflicts=True,
                unique_fields=["code"],
                update_fields=[name for name in IcdCode.CATALOGUE_FIELDS if name != "code"],
            )
            ids.update(IcdCode.objects.filter(depth=depth).values_list("code", "id"))
    total = IcdCode.objects.count()
    return CatalogueLoadResult(
        total=total, created=total - existing_before, billable=sum(1 for row in rows if row.is_billable)
    )


# --- Codes as people type them, looked up -------------------------------------------


def codes_by_compact(compacts: Iterable[str]) -> dict[str, IcdCode]:
    wanted = set(compacts)
    found: dict[str, IcdCode] = {}
    wanted_list = list(wanted)
    for start in range(0, len(wanted_list), 900):  # stays under SQLite's variable limit
        chunk = wanted_list[start : start + 900]
        found.update({code.code_compact: code for code in IcdCode.objects.filter(code_compact__in=chunk)})
    return found


# --- Billable codes: what a case may be coded with ---------------------------------------

_SUGGESTIONS = 5


def billable_codes_under(compact: str, *, limit: int = _SUGGESTIONS) -> list[str]:
    """The first billable codes of the catalogue that begin with `compact` (e.g. M545 ->
    M54.50, M54.51, M54.59): what a non-billable or retired code was split into."""
    codes = IcdCode.objects.filter(code_compact__startswith=compact, is_billable=True).order_by("code")
    return list(codes.values_list("code", flat=True)[:limit])


def _suggestion(compact: str) -> str:
    codes = billable_codes_under(compact)
    return f"; use a billable code such as {', '.join(codes)}" if codes else ""


def unbillable_code_message(code: IcdCode) -> str:
    """Why `code` cannot be billed ("" when it can)."""
    if code.is_billable:
        return ""
    return f"{code.code} is not billable (it has more specific codes){_suggestion(code.code_compact)}"


def retired_code_message(written: str) -> str:
    """For a code that is not in the current catalogue (retired, or mistyped)."""
    compact = code_compact(written)
    return f"{written.strip(CODE_WRAPPING)!r} is not in the current ICD-10-CM catalogue{_suggestion(compact)}"


# --- Code frequencies -----------------------------------------------------------------


class FrequencyFileError(DomainError):
    """The frequency file is malformed; nothing was written."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}. Nothing was imported.")
        self.line = line
        self.problem = problem


_CODES_SHOWN = 10


@dataclass
class FrequencyImportResult:
    rows: int = 0
    matched: int = 0
    unknown: list[str] = field(default_factory=list)
    icd9_like: list[str] = field(default_factory=list)

    def report(self) -> list[tuple[str, str]]:
        """(level, message) lines that tell the admin what happened; the command and the
        admin page show the same lines. Levels: success, warning, info."""
        return [
            ("success", f"{self.rows} rows read: {self.matched} matched ICD-10-CM codes."),
            _codes_line("unknown codes", self.unknown),
            _codes_line("codes that look like ICD-9 (not imported)", self.icd9_like),
        ]


def _codes_line(label: str, codes: list[str]) -> tuple[str, str]:
    if not codes:
        return "info", f"0 {label}."
    shown = ", ".join(codes[:_CODES_SHOWN]) + (" ..." if len(codes) > _CODES_SHOWN else "")
    return "warning", f"{len(codes)} {label}: {shown}"


def _frequency_rows(text: str, delimiter: str) -> Iterator[tuple[int, str, int]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True)
    header = next(reader, None)
    if header is None:
        raise FrequencyFileError(1, "the file is empty; expected a header row code,count[,description]")
    names = [name.strip(CODE_WRAPPING).lower() for name in header]
    if names[:2] != ["code", "count"]:
        raise FrequencyFileError(
            1,
            f"expected the header code,count[,description] (delimiter {delimiter!r}), found {delimiter.join(header)!r}",
        )
    for values in reader:
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) not in (2, 3):
            raise FrequencyFileError(line, f"expected 2 or 3 columns, found {len(values)}")
        raw_code, raw_count = values[0].strip(CODE_WRAPPING), values[1].strip(CODE_WRAPPING).replace(",", "")
        if not raw_code:
            raise FrequencyFileError(line, "the code is empty")
        if not raw_count.isdigit():
            raise FrequencyFileError(line, f"the count {values[1].strip()!r} is not a whole number >= 0")
        yield line, raw_code, int(raw_count)


def _read_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise FrequencyFileError(line, "the file is not UTF-8 text") from error


def code_frequencies_import(*, data: bytes, delimiter: str = ",") -> FrequencyImportResult:
    """Replace every code's frequency with the file's counts (`manage.py
    import_code_frequencies` and the admin's upload both call this).

    Codes may come with or without the dot; a code listed twice has its counts summed;
    codes outside the catalogue are skipped and reported, never refused. A malformed
    file raises FrequencyFileError before anything is written.
    """
    parsed = list(_frequency_rows(_read_text(data), delimiter))  # raises before any write
    result = FrequencyImportResult(rows=len(parsed))
    known = codes_by_compact(code_compact(raw) for _, raw, _ in parsed)
    counts: Counter[int] = Counter()
    for _line, raw_code, count in parsed:
        code = known.get(code_compact(raw_code))
        if code is not None:
            counts[code.pk] += count
            result.matched += 1
        elif looks_like_icd9(raw_code):
            result.icd9_like.append(raw_code)
        else:
            result.unknown.append(raw_code)
    with transaction.atomic():
        IcdCode.objects.filter(frequency__isnull=False).update(frequency=None)
        updates = [IcdCode(pk=pk, frequency=count) for pk, count in counts.items()]
        IcdCode.objects.bulk_update(updates, ["frequency"], batch_size=500)
    return result
