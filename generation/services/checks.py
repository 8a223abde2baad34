"""Running the automatic checks on a case and storing what they find.

A case's checks read its current texts together (coverage compares the note with the
dialogue; consistency reads scenario, note and dialogue), so when any of them changes the
current note and dialogue are both checked again: the new text's own checks and, beside it,
the other artefacts' cross-artefact checks (the only ones a new text of another artefact
can change), before the version write and stored with it (generation.services.cases). If
what they read changed before the write, the case is checked again after the write has
committed (`case_checks_refresh`, from `transaction.on_commit`), never under the write's
lock; that stores its result only if the versions it read are still the current ones: a
writer that came in between refreshes after its own commit.

What is stored per version: `check_flags` (findings with spans, severity and check version;
an importer's `unparsed` flags are kept beside them) and `check_versions` ({code: version}
of every check that ran, found or not), which `manage.py run_checks` compares with the
registry. The case keeps `has_check_flags` and `check_summary` for the queues.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from generation.checks import (
    CHECK_CODES,
    CHECKS,
    CROSS_ARTEFACT_CHECKS,
    Check,
    CheckResultData,
    CheckSubject,
    CodeFacts,
    DialogueLimits,
    Severity,
    dialogue_turn_pairs,
    run_checks,
)
from generation.models import ArtefactKind, ArtefactVersion, Case
from generation.selectors import current_version_checks, current_versions, current_versions_of_cases

CHECKED_KINDS = (ArtefactKind.NOTE, ArtefactKind.DIALOGUE)
# Codes the checks wrote before the framework (replaced by coverage_*): dropped on recompute.
RETIRED_CHECK_CODES = frozenset({"unspoken_fact"})
CURRENT_CHECK_VERSIONS = {check.code: check.version for check in CHECKS}
# Every registered check (code, title, severity, kinds), for the review side's figures: review
# reads generation through its services and selectors, never generation.checks directly.
REGISTERED_CHECKS: tuple[Check, ...] = CHECKS


@dataclass(frozen=True)
class ArtefactText:
    """What the checks read of one artefact: its text and structured content."""

    text: str
    content: Mapping[str, Any]


@dataclass(frozen=True)
class VersionChecks:
    flags: list[dict[str, Any]]
    versions: dict[str, int]


def case_check_subject(*, case: Case, kind: str, texts: Mapping[str, ArtefactText]) -> CheckSubject:
    """The subject of `kind`'s checks: the case's texts, its scenario, code and batch settings."""
    note, dialogue, scenario = (texts.get(k) for k in (ArtefactKind.NOTE, ArtefactKind.DIALOGUE, ArtefactKind.SCENARIO))
    code = case.code
    config = case.batch.config or {}
    return CheckSubject(
        kind=kind,
        note_text=note.text if note else "",
        dialogue_text=dialogue.text if dialogue else "",
        dialogue_turns=dialogue_turn_pairs(dialogue.content) if dialogue else None,
        scenario=scenario.content if scenario else {},
        # A case imported with its code to be assigned is checked against its code once it has one.
        code=CodeFacts(code.code, code.description, code.chapter, code.block, code.block_title) if code else None,
        language=str(config.get("language") or "en"),
        limits=DialogueLimits.from_config(config),
    )


def checks_compute(
    *,
    case: Case,
    kind: str,
    texts: Mapping[str, ArtefactText],
    previous_flags: Iterable[dict[str, Any]] = (),
    previous_versions: Mapping[str, int] | None = None,
    codes: Collection[str] | None = None,
) -> VersionChecks:
    """Run the checks (all, or those named) on `kind`'s text. The flags of checks that did not
    run (an importer's `unparsed`, or the checks not named) are kept."""
    results = run_checks(case_check_subject(case=case, kind=kind, texts=texts), codes)
    return checks_merge(
        kind=kind, results=results, previous_flags=previous_flags, previous_versions=previous_versions, codes=codes
    )


def checks_merge(
    *,
    kind: str,
    results: list[CheckResultData],
    previous_flags: Iterable[dict[str, Any]],
    previous_versions: Mapping[str, int] | None,
    codes: Collection[str] | None,
) -> VersionChecks:
    """`results` of the checks `codes` (None: all) run on `kind`'s text, with the stored flags
    and versions of the checks that did not run."""
    recomputed = set(codes) if codes is not None else {*CHECK_CODES, *RETIRED_CHECK_CODES}
    kept = [flag for flag in previous_flags if flag.get("code") not in recomputed]
    ran = {result.code: result.version for result in results}
    versions = {**(previous_versions or {}), **ran} if codes is not None else ran
    return VersionChecks(
        flags=kept + [flag for result in results for flag in result.flags(kind=kind)], versions=versions
    )


def cross_checks_beside(
    *, case: Case, kind: str, texts: Mapping[str, ArtefactText]
) -> dict[str, list[CheckResultData]]:
    """{other kind: its cross-artefact checks' results} of the case's other checked artefacts
    in `texts`, beside `kind`'s new text there: what a new version changes of their findings."""
    return {
        other: run_checks(case_check_subject(case=case, kind=other, texts=texts), CROSS_ARTEFACT_CHECKS)
        for other in CHECKED_KINDS
        if other != kind and other in texts
    }


def _texts(versions: Mapping[str, ArtefactVersion]) -> dict[str, ArtefactText]:
    return {kind: ArtefactText(version.text, version.content) for kind, version in versions.items()}


def check_summary(latest_flags: Iterable[list[Any]]) -> str:
    """The queue filters' index of a case's current findings: " code:severity " tokens."""
    pairs = {
        f"{flag.get('code', '')}:{flag.get('severity') or 'warning'}"
        for flags in latest_flags
        for flag in flags
        if isinstance(flag, dict)
    }
    return f" {' '.join(sorted(pairs))} " if pairs else ""


def case_flag_fields(latest_flags: Iterable[list[Any]]) -> dict[str, Any]:
    """The case's badge and summary, from the flags of its current versions."""
    summary = check_summary(list(latest_flags))
    return {"has_check_flags": bool(summary), "check_summary": summary}


def case_checks_refresh(*, case_id: int, codes: Collection[str] | None = None) -> bool:
    """Check the case's current note and dialogue again and store the results and the badge.
    The checks run before the short transaction; if a newer version was written meanwhile,
    nothing is stored (False): that version's writer refreshes after its own commit."""
    case = Case.objects.select_related("code", "batch").get(pk=case_id)
    read = current_versions(case=case)
    texts = _texts(read)
    checked: dict[str, VersionChecks] = {
        kind: checks_compute(
            case=case,
            kind=kind,
            texts=texts,
            previous_flags=read[kind].check_flags,
            previous_versions=read[kind].check_versions,
            codes=codes,
        )
        for kind in CHECKED_KINDS
        if kind in read
    }
    if not checked:  # nothing to check: the stored flags and badge stand
        return True
    with transaction.atomic():
        Case.objects.select_for_update(of=("self",)).filter(pk=case_id).first()
        now = current_version_checks(case=case)
        if {kind: stored.pk for kind, stored in now.items()} != {kind: v.pk for kind, v in read.items()}:
            return False
        for kind, result in checked.items():
            ArtefactVersion.objects.filter(pk=read[kind].pk).update(
                check_flags=result.flags, check_versions=result.versions
            )
        flags = [checked[kind].flags if kind in checked else stored.flags for kind, stored in now.items()]
        Case.objects.filter(pk=case_id).update(**case_flag_fields(flags))
    return True


def case_checks_refresh_on_commit(*, case_id: int, codes: Collection[str] | None = None) -> None:
    """Refresh the case's checks once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: case_checks_refresh(case_id=case_id, codes=codes))


def _is_stale(version: ArtefactVersion, codes: tuple[str, ...] | None) -> bool:
    wanted = codes if codes is not None else tuple(CURRENT_CHECK_VERSIONS)
    applicable = {check.code for check in CHECKS if version.kind in check.kinds}
    return any(
        version.check_versions.get(code) != CURRENT_CHECK_VERSIONS[code] for code in wanted if code in applicable
    )


@dataclass(frozen=True)
class RecheckCounts:
    cases_seen: int
    cases_rechecked: int
    cases_skipped: int  # changed while being checked: their writer refreshes them


def stale_cases_recheck(*, batch_size: int = 200, codes: tuple[str, ...] | None = None) -> RecheckCounts:
    """Recheck every case whose current note or dialogue was checked by an older version of
    a check (or never): `manage.py run_checks`. Run twice, the second run finds nothing."""
    seen = rechecked = skipped = 0
    last_id = 0
    while True:
        ids = list(Case.objects.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return RecheckCounts(seen, rechecked, skipped)
        last_id = ids[-1]
        seen += len(ids)
        current = current_versions_of_cases(case_ids=ids)
        stale = sorted(
            {case_id for (case_id, kind), v in current.items() if kind in CHECKED_KINDS and _is_stale(v, codes)}
        )
        for case_id in stale:
            if case_checks_refresh(case_id=case_id, codes=codes):
                rechecked += 1
            else:
                skipped += 1


# --- The queues' filters ----------------------------------------------------------------

CHECK_CHOICES = [(check.code, f"{check.code} ({check.title})") for check in CHECKS]
SEVERITY_CHOICES = [(severity.value, severity.value.capitalize()) for severity in Severity]


def check_summary_match(*, code: str = "", severity: str = "") -> str:
    """The part of check_summary that a case flagged by `code` (and/or at `severity`) has."""
    if code and severity:
        return f" {code}:{severity} "
    return f" {code}:" if code else f":{severity} "
