"""Made-up clinical-sounding text for near-duplicate tests: random sentences over a small
vocabulary, reproducible from a seed. Two seeds give texts that share almost no word 3-gram."""

from __future__ import annotations

import random

WORDS = (  # noqa: SIM905 (a sentence reads better than a list of 56 strings)
    "patient reports mild moderate severe pain cough fever fatigue nausea since three days weeks months "
    "left right knee shoulder chest abdomen back headache dizziness taking ibuprofen metformin lisinopril "
    "daily twice denies smoking alcohol exam shows tenderness swelling normal clear lungs heart rate blood "
    "pressure elevated follow up referral physiotherapy imaging ordered labs pending advised rest fluids"
).split()


def synthetic_text(seed: int, words: int = 160) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def lightly_edited(text: str, *, changes: int = 3, seed: int = 0) -> str:
    """The same text with `changes` words replaced, as a reviewer's small edit would."""
    rng = random.Random(seed)
    words = text.split()
    for position in rng.sample(range(len(words)), changes):
        words[position] = "edited"
    return " ".join(words)
