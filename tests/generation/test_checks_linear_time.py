"""The automatic checks run on text anyone can type, inside the version write: no input may
make them backtrack. The inputs are shaped against each pattern (a label, then a long run of
what the pattern could almost take); with the earlier patterns most of them took from
seconds to minutes. scripts/benchmark_checks.py prints the times. Here each input is checked
at a quarter of its length and at its whole length, in CPU time: a linear scan takes about
four times as long, a backtracking one sixteen times or more. The bound (eight times, plus a
little for timer noise) compares a run with its own shorter run, so a slow or busy machine
does not fail it as an absolute time limit would."""

from __future__ import annotations

import string
import time
from itertools import product

import pytest

from generation.checks import unspoken_fact_flags, version_check_flags

SIZE = 50_000


def _repeat(unit: str, prefix: str = "", suffix: str = "!") -> str:
    return prefix + unit * (SIZE // len(unit)) + suffix


# name -> text: a label followed by a long run of what its pattern could almost take.
PATHOLOGICAL_INPUTS: dict[str, str] = {
    "born + spaces": _repeat(" ", "born"),
    "born + tabs": _repeat("\t", "born ", ""),
    "DOB + spaces": _repeat(" ", "DOB", "x"),
    "date of birth + newlines": _repeat("\n", "date of birth"),
    "MRN + spaces": _repeat(" ", "MRN"),
    "MRN + newline-spaces": _repeat("\n ", "MRN", ">"),
    "medical record number + spaces": _repeat(" ", "medical record number"),
    "MRN + digits + letter": _repeat("1", "MRN A", "a"),
    "e-mail-like a.a.a": _repeat("a.", "a1", ">"),
    "e-mail-like a.-": _repeat("a.-"),
    "e-mail-like @a.": _repeat("@a.", "a"),
    "e-mail-like a@": _repeat("a@"),
    "e-mail-like dots": _repeat("."),
    "e-mail-like @s": _repeat("@", "a"),
    "phone-like digits": _repeat("1"),
    "phone-like (555) + spaces": _repeat(" ", "(555)"),
    "phone-like 555-": _repeat("555-"),
    "phone-like 1 ": _repeat("1 "),
    "street-like 1 + spaces": _repeat(" ", "1"),
    "street-like 1 Aa": _repeat("Aa ", "1 "),
    "newlines": _repeat("\n"),
    "newlines before a number": _repeat("\n", "", "1"),
    "brackets": _repeat("["),
    "< + spaces": _repeat(" ", "<"),
    "{ + word": _repeat("a", "{"),
    "XX/": _repeat("XX/", "", "a"),
    "acronym-like": _repeat("Aa1"),
    "number-like 1.": _repeat("1.", "a"),
}


def check_as_note(text: str) -> list[dict]:
    content = {"subjective": text, "objective": text[:100], "assessment": "", "plan": ""}
    return version_check_flags(kind="note", content=content, text=text)


def check_as_dialogue(text: str) -> list[dict]:
    # Without turns the checks read the rendered text and strip its speaker tags first.
    return version_check_flags(kind="dialogue", content={}, text=text, note_content={"plan": text})


def _cpu_seconds(check, text: str) -> float:
    """The fastest of two runs, in this process's CPU time (not the wall clock another
    process on the machine can stretch)."""
    times = []
    for _ in range(2):
        started = time.process_time()
        check(text)
        times.append(time.process_time() - started)
    return min(times)


def _quarter(text: str) -> str:
    """The same shape at a quarter of the length: the label, a quarter of the run, its end."""
    return text[: len(text) // 4] + text[-1]


@pytest.mark.parametrize("text", PATHOLOGICAL_INPUTS.values(), ids=PATHOLOGICAL_INPUTS.keys())
@pytest.mark.parametrize("check", [check_as_note, check_as_dialogue], ids=["note", "dialogue"])
def test_a_pathological_input_takes_time_in_proportion_to_its_length(check, text):
    short, whole = _cpu_seconds(check, _quarter(text)), _cpu_seconds(check, text)
    assert whole < 8 * short + 0.05, f"{short:.3f} s at a quarter of the length, {whole:.3f} s at all of it"


def many_terms_note(chars: int) -> dict[str, str]:
    acronyms = ["".join(letters) for letters in product(string.ascii_uppercase, repeat=3)]
    drugs = [f"a{''.join(letters)}pril" for letters in product(string.ascii_lowercase, repeat=3)]
    return {"objective": " ".join(acronyms)[:chars], "plan": " ".join(drugs)[:chars]}


def test_a_note_with_thousands_of_terms_is_compared_with_a_long_dialogue_in_proportion_to_their_lengths():
    def compared(scale: int) -> tuple[float, list[dict]]:
        note, dialogue = many_terms_note(5_000 * scale), "we talked about it " * (625 * scale)
        flags: list[dict] = []

        def check(_: str) -> None:
            flags[:] = unspoken_fact_flags(note, dialogue)

        return _cpu_seconds(check, ""), flags

    (short, _), (whole, flags) = compared(1), compared(4)
    assert whole < 8 * short + 0.05, f"{short:.3f} s at a quarter of the sizes, {whole:.3f} s at full size"
    assert len(flags) > 2_000  # one finding per unsaid medicine name
