"""The form of a dialogue: who speaks, how many turns of what length, and nothing that is not
conversation (an LLM's preamble or closing remark, section headers, code fences, ICD codes
read aloud, another language)."""

from __future__ import annotations

import re
from collections import Counter

from generation.checks.caseless import CaselessPattern
from generation.checks.coverage import Turn, dialogue_turns
from generation.checks.framework import DialogueLimits, Finding, Span, merge_spans
from generation.checks.patterns import finds, holds_any_case
from generation.models import is_known_speaker, note_heading, speaker_name

# An LLM talking about the dialogue instead of writing it.
_META = CaselessPattern(
    r"^[^\S\n]{0,20}+(?:\*\*)?(?:sure[!,.]|certainly[!,.]|of course[!,.]|absolutely[!,.]|"
    r"here(?: is|'s| are) (?:a |an |the |your )?(?:\w{1,20}+ ){0,3}?(?:dialogue|conversation|transcript)|"
    r"below is|the following (?:is|dialogue|conversation)|i hope this|let me know if|feel free to|"
    r"this (?:dialogue|conversation) (?:covers|includes|demonstrates|captures|illustrates)|"
    r"\(?end of (?:the )?(?:dialogue|conversation|transcript)\)?|note:|disclaimer)",
    re.MULTILINE,
)
_CODE_FENCE = re.compile(r"^[^\S\n]{0,20}+(?:```|~~~)", re.MULTILINE)
_MARKDOWN_HEADER = re.compile(r"^[^\S\n]{0,20}+(?:#{1,6}+[^\S\n]|-{3,}+[^\S\n]*$|={3,}+[^\S\n]*$)", re.MULTILINE)
_TITLE_LINE = CaselessPattern(
    r"^[^\S\n]{0,20}+\**(?:dialogue|conversation|transcript|doctor[- ]patient (?:dialogue|conversation))\**:?\**"
    r"[^\S\n]{0,20}+$",
    re.MULTILINE,
)
# E11.9, I10, M25.562 (not vitamin B12, not a room or a bus number written "B12" after a word).
_ICD_CODE = re.compile(r"(?<![\w.])(?<!vitamin )(?<!Vitamin )[A-TV-Z]\d{2}(?:\.\d{1,4}+[A-Z]?)?(?![\w.])")
_ICD_WORDS = re.compile(r"\b(?:icd(?:-?10)?(?:-cm)?|diagnosis code|billing code)\b", re.IGNORECASE)
_ICD_HINTS = (
    (_ICD_CODE, finds(re.compile(r"[A-TV-Z]\d{2}"))),
    (_ICD_WORDS, holds_any_case("icd", "diagnosis code", "billing code")),
)

# The commonest function words of each language: enough to tell a conversation's language
# apart on a few dozen words (see the README for why not a statistical detector).
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "and",
            "you",
            "i",
            "to",
            "a",
            "of",
            "is",
            "it",
            "that",
            "in",
            "have",
            "for",
            "your",
            "my",
            "this",
            "with",
            "do",
            "be",
            "it's",
            "not",
            "what",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "de",
            "que",
            "y",
            "en",
            "los",
            "las",
            "es",
            "por",
            "con",
            "para",
            "una",
            "un",
            "su",
            "se",
            "no",
            "lo",
            "me",
            "tiene",
            "usted",
            "qué",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "de",
            "des",
            "et",
            "est",
            "que",
            "une",
            "un",
            "vous",
            "je",
            "pas",
            "pour",
            "avec",
            "dans",
            "il",
            "elle",
            "ce",
            "qui",
            "sur",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ich",
            "sie",
            "es",
            "ein",
            "eine",
            "zu",
            "mit",
            "den",
            "auf",
            "für",
            "haben",
            "sind",
            "wie",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "la",
            "di",
            "che",
            "e",
            "è",
            "un",
            "una",
            "per",
            "non",
            "sono",
            "mi",
            "ho",
            "con",
            "lei",
            "questo",
            "del",
            "della",
            "gli",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "de",
            "que",
            "e",
            "do",
            "da",
            "em",
            "um",
            "uma",
            "para",
            "com",
            "não",
            "você",
            "os",
            "as",
            "está",
            "tem",
            "eu",
            "se",
        ]
    ),
    "nl": frozenset(
        [
            "de",
            "het",
            "een",
            "en",
            "van",
            "ik",
            "je",
            "niet",
            "is",
            "dat",
            "die",
            "met",
            "voor",
            "op",
            "zijn",
            "u",
            "heeft",
            "wat",
        ]
    ),
}
LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
}
_MIN_WORDS_FOR_LANGUAGE = 20
_WORD = re.compile(r"[^\W\d_]++(?:'[^\W\d_]++)?")


def _turn_span(turn: Turn) -> Span:
    return (turn.start, turn.start + len(turn.text))


def speaker_findings(text: str) -> list[Finding]:
    turns = dialogue_turns(text)
    findings = []
    unknown = [turn for turn in turns if not turn.speaker or not is_known_speaker(turn.speaker)]
    if unknown:
        names = sorted({turn.speaker or "(untagged)" for turn in unknown})
        spans = merge_spans([_turn_span(turn) for turn in unknown])
        findings.append(Finding(f"Speakers outside the known set: {', '.join(names[:5])}", spans, names))
    speakers = {speaker_name(turn.speaker) for turn in turns}
    absent = [role for role in ("doctor", "patient") if role not in speakers]
    if turns and absent:
        findings.append(Finding(f"The {' and the '.join(absent)} never speak{'s' if len(absent) == 1 else ''}"))
    return findings


def turn_findings(text: str, limits: DialogueLimits) -> list[Finding]:
    turns = dialogue_turns(text)
    findings = []
    if not limits.min_turns <= len(turns) <= limits.max_turns:
        bounds = f"{limits.min_turns}-{limits.max_turns}"
        findings.append(Finding(f"{len(turns)} turns (expected {bounds})", (), len(turns)))
    short = [turn for turn in turns if len(turn.text.strip()) < limits.min_turn_chars]
    long = [turn for turn in turns if len(turn.text.split()) > limits.max_turn_words]
    if short:
        spans = merge_spans([_turn_span(turn) for turn in short])
        findings.append(Finding(f"{len(short)} turn(s) shorter than {limits.min_turn_chars} characters", spans))
    if long:
        spans = merge_spans([_turn_span(turn) for turn in long])
        findings.append(Finding(f"{len(long)} turn(s) longer than {limits.max_turn_words} words", spans))
    if turns:
        mean = sum(len(turn.text.split()) for turn in turns) / len(turns)
        if mean < limits.min_mean_turn_words:
            findings.append(Finding(f"Turns average {mean:.1f} words: not a conversation", (), round(mean, 1)))
    findings += _run_findings(turns, limits.max_run)
    return findings


def _run_findings(turns: list[Turn], max_run: int) -> list[Finding]:
    runs: list[list[Turn]] = []
    for turn in turns:
        if runs and speaker_name(runs[-1][-1].speaker) == speaker_name(turn.speaker):
            runs[-1].append(turn)
        else:
            runs.append([turn])
    long_runs = [run for run in runs if len(run) > max_run]
    if not long_runs:
        return []
    spans = merge_spans([(run[0].start, run[-1].start + len(run[-1].text)) for run in long_runs])
    longest = max(len(run) for run in long_runs)
    return [Finding(f"One speaker holds the floor for {longest} turns in a row", spans, longest)]


def meta_text_findings(text: str) -> list[Finding]:
    """Preamble and closing commentary, section headers, code fences and title lines."""
    spans: list[Span] = []
    for pattern in (_META, _CODE_FENCE, _MARKDOWN_HEADER, _TITLE_LINE):
        spans += [(match.start(), _line_end(text, match.start())) for match in pattern.finditer(text)]
    offset = 0
    for line in text.splitlines(keepends=True):
        heading = note_heading(line)
        if heading and heading.primary and not heading.inline:  # "Assessment:" alone on its line
            spans.append((offset, offset + len(line.rstrip("\n"))))
        offset += len(line)
    if not spans:
        return []
    merged = merge_spans(spans)
    shown = [text[start:end].strip()[:40] for start, end in merged[:3]]
    return [Finding(f"Not part of the conversation: {'; '.join(shown)}", merged, shown)]


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def icd_code_findings(text: str) -> list[Finding]:
    spans = [
        (match.start(), match.end())
        for pattern, could_match in _ICD_HINTS
        if could_match(text)
        for match in pattern.finditer(text)
    ]
    if not spans:
        return []
    merged = merge_spans(spans)
    shown = list(dict.fromkeys(text[start:end] for start, end in merged))
    return [Finding(f"ICD codes read aloud: {', '.join(shown[:5])}", merged, shown)]


def detect_language(text: str) -> tuple[str, float] | None:
    """(language code, share of its function words) or None when too short to tell."""
    words = [word.lower() for word in _WORD.findall(text)]
    if len(words) < _MIN_WORDS_FOR_LANGUAGE:
        return None
    counts = Counter(words)
    scores = {lang: sum(counts[word] for word in stop) / len(words) for lang, stop in STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best, scores[best]


def language_findings(text: str, expected: str) -> list[Finding]:
    speech = " ".join(turn.text for turn in dialogue_turns(text))
    detected = detect_language(speech)
    if detected is None or detected[0] == expected or expected not in STOPWORDS:
        return []
    language = LANGUAGE_NAMES.get(detected[0], detected[0])
    wanted = LANGUAGE_NAMES.get(expected, expected)
    return [Finding(f"The dialogue reads as {language}, the batch is in {wanted}", (), detected[0])]
