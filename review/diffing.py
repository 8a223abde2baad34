"""Word-level diff between two texts, as (op, text) runs for the history screen.

The template escapes each run; nothing here builds HTML, so LLM text stays inert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

Op = Literal["equal", "insert", "delete"]
# A word with its trailing whitespace, so joining the runs gives the texts back exactly.
_TOKEN = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class DiffRun:
    op: Op
    text: str


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text or "")


def word_diff(before: str, after: str) -> list[DiffRun]:
    """Runs that read as `after`, with deleted words of `before` marked in place."""
    old, new = _tokens(before), _tokens(after)
    # Compare words without their whitespace so a re-wrapped line is not a change.
    matcher = SequenceMatcher(a=[t.strip() for t in old], b=[t.strip() for t in new], autojunk=False)
    runs: list[DiffRun] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            runs.append(DiffRun("equal", "".join(new[b0:b1])))
            continue
        if a1 > a0:
            runs.append(DiffRun("delete", "".join(old[a0:a1])))
        if b1 > b0:
            runs.append(DiffRun("insert", "".join(new[b0:b1])))
    return runs


def has_changes(runs: list[DiffRun]) -> bool:
    return any(run.op != "equal" for run in runs)
