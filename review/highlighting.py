"""The automatic checks' findings marked in the text they point at, for the item screen.

The text is cut into pieces, each with the finding it belongs to or None; the template
renders every piece auto-escaped (a finding's piece inside a <mark>), so no generated text
ever goes through |safe."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from generation.models import ArtefactKind, ArtefactVersion

Flag = Mapping[str, Any]
Piece = tuple[str, Flag | None]


def _marks(flags: Iterable[Flag], *, kind: str, length: int) -> list[tuple[int, int, Flag]]:
    marks = []
    for flag in flags:
        if not isinstance(flag, Mapping) or (flag.get("span_kind") or kind) != kind:
            continue
        for span in flag.get("spans") or ():
            start, end = max(0, int(span[0])), min(length, int(span[1]))
            if start < end:
                marks.append((start, end, flag))
    return sorted(marks, key=lambda mark: (mark[0], mark[1]))


def flagged_pieces(*, text: str, flags: Iterable[Flag], kind: str) -> list[Piece]:
    """`text` in pieces: the spans of the findings that point into it and the text between
    them. Where spans overlap, the narrowest finding holds the piece (a placeholder inside a
    flagged plan stays visible as a placeholder)."""
    marks = _marks(flags, kind=kind, length=len(text))
    cuts = sorted({0, len(text), *(edge for start, end, _ in marks for edge in (start, end))})
    pieces: list[Piece] = []
    held: list[tuple[int, int, Flag] | None] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        covering = [mark for mark in marks if mark[0] <= start and end <= mark[1]]
        mark = min(covering, key=lambda m: m[1] - m[0]) if covering else None
        if held and held[-1] is mark:
            pieces[-1] = (pieces[-1][0] + text[start:end], pieces[-1][1])
        else:
            pieces.append((text[start:end], mark[2] if mark else None))
            held.append(mark)
    return pieces


def highlighted_texts(*, versions: Mapping[str, ArtefactVersion]) -> dict[str, list[Piece]]:
    """{kind: pieces} of the current note and dialogue that have a finding with a span. A
    dialogue's coverage miss points into the note, so every version's flags are read."""
    flags = [flag for version in versions.values() for flag in version.check_flags]
    highlighted = {}
    for kind in (ArtefactKind.NOTE, ArtefactKind.DIALOGUE):
        version = versions.get(kind)
        if version is None:
            continue
        pieces = flagged_pieces(text=version.text, flags=flags, kind=kind)
        if any(flag is not None for _, flag in pieces):
            highlighted[str(kind)] = pieces
    return highlighted
