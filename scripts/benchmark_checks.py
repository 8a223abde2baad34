"""Time the automatic checks on the inputs that made their earlier patterns backtrack.

    .venv/bin/python scripts/benchmark_checks.py [--repeat 3]

Prints, per pathological input of tests/generation/test_checks_linear_time.py (50,000
characters each), the slowest of --repeat runs of every check on it, as a note and as a
dialogue rendered to text, then the note with thousands of terms against a long dialogue.
Nothing here asserts: the test holds the (generous) bound, this prints the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

import django  # noqa: E402

django.setup()  # the checks read the note's sections from generation.models

from generation.checks import unspoken_fact_flags  # noqa: E402
from tests.generation.test_checks_linear_time import (  # noqa: E402
    PATHOLOGICAL_INPUTS,
    check_as_dialogue,
    check_as_note,
    many_terms_note,
)

LONG_DIALOGUE = "we talked about it " * 2_500


def _slowest_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return max(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"{'input':<34} {'chars':>7} {'note ms':>9} {'dialogue ms':>12}")
    for name, text in PATHOLOGICAL_INPUTS.items():
        note_ms = _slowest_ms(lambda text=text: check_as_note(text), args.repeat)
        dialogue_ms = _slowest_ms(lambda text=text: check_as_dialogue(text), args.repeat)
        print(f"{name:<34} {len(text):>7} {note_ms:>9.1f} {dialogue_ms:>12.1f}")
    note = many_terms_note()
    terms_ms = _slowest_ms(lambda: unspoken_fact_flags(note, LONG_DIALOGUE), args.repeat)
    chars = sum(map(len, note.values()))
    print(f"{'note terms vs 50,000-char dialogue':<34} {chars:>7} {terms_ms:>9.1f}")


if __name__ == "__main__":
    main()
