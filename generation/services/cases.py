"""Writes that every part of the product shares: moving a case through its state
machine and adding an immutable artefact version."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from generation import rendering
from generation.checks import CROSS_ARTEFACT_CHECKS, CheckResultData
from generation.models import (
    CASE_TRANSITIONS,
    DELIVERED_SOURCES,
    NEAR_DUPLICATE_KINDS,
    AgentCall,
    ArtefactVersion,
    Case,
    InvalidTransition,
    VersionSource,
    delivers_pair,
)
from generation.models.text_limits import ARTEFACT_TEXT_MAX_CHARS, text_within_limit
from generation.selectors import StoredChecks, current_version_checks, current_versions
from generation.services.batch_counters import (
    batch_counters_move,
    counted_by,
    new_cases_deltas,
    status_deltas,
)
from generation.services.checks import (
    CHECKED_KINDS,
    ArtefactText,
    case_checks_refresh_on_commit,
    case_flag_fields,
    checks_compute,
    checks_merge,
    cross_checks_beside,
)
from generation.services.near_duplicates import (
    near_duplicates_index_on_commit,
    near_duplicates_index_version_on_commit,
)


def case_transition(*, case: Case, to: str, error: str = "", expected: str | None = None, counted: bool = True) -> Case:
    """Move a case to status `to`, refusing what the state machine forbids, and its batch's
    counters with it (unless not `counted`: a failure recorded while the batch row cannot be
    written, which the recovery pass recounts).

    The UPDATE is conditional on the status read, so two workers racing on the same
    case cannot both move it: the loser gets InvalidTransition.
    """
    current = expected or case.status
    case.status = current
    case.ensure_transition(to)
    now = timezone.now()
    updated = Case.objects.filter(pk=case.pk, status=current).update(
        status=to, status_changed_at=now, round_started_at=now, updated_at=now, error=error
    )
    if not updated:
        case.refresh_from_db()
        raise InvalidTransition(f"Case {case.pk} is {case.status} now, not {current}; {current} -> {to} refused.")
    if counted:
        batch_counters_move(batch_id=case.batch_id, deltas=status_deltas(moved={current: 1}, to=to))
    # What the UPDATE wrote, without reading the row back.
    case.status, case.error = to, error
    case.status_changed_at = case.round_started_at = case.updated_at = now
    return case


def cases_transition(
    *, batch_id: int, current: Collection[str], to: str, error: str = "", case_ids: Collection[int] | None = None
) -> int:
    """Move every case of the batch (or of `case_ids` in it) whose status is one of `current`
    to `to`: case_transition for many cases (a long write made short). One UPDATE per group of
    statuses the batch's counters count alike, then one for the counters; call it in a
    transaction, so they move together. The UPDATEs are conditional on the status, so a case
    another request moved meanwhile is left alone. Returns how many moved."""
    refused = sorted(status for status in current if to not in CASE_TRANSITIONS[status])
    if refused:
        raise InvalidTransition(f"{', '.join(refused)} -> {to} is not allowed.")
    cases = Case.objects.filter(batch_id=batch_id)
    if case_ids is not None:
        cases = cases.filter(pk__in=case_ids)
    alike: dict[frozenset[str], list[str]] = {}
    for status in current:
        alike.setdefault(counted_by(status), []).append(status)
    now = timezone.now()
    moved: dict[str, int] = {}  # by one status of each group: the others count alike
    for statuses in alike.values():
        moved[statuses[0]] = cases.filter(status__in=statuses).update(
            status=to, status_changed_at=now, round_started_at=now, updated_at=now, error=error
        )
    batch_counters_move(batch_id=batch_id, deltas=status_deltas(moved=moved, to=to))
    return sum(moved.values())


def content_changed_fields(*, at: datetime) -> dict[str, Any]:
    """The rule of the review round for content: a new version that can be current (not a
    draft) starts a new round at its creation time `at`, so verdicts given before it no
    longer count and the version itself belongs to the new round."""
    return {"round_started_at": at}


def cases_content_changed(*, case_ids: Collection[int], at: datetime) -> None:
    """content_changed_fields for many cases, in one UPDATE."""
    Case.objects.filter(pk__in=case_ids).update(**content_changed_fields(at=at))


class LockedCase(NamedTuple):
    last: int  # the largest number among the rows asked about; 0 when there are none
    code_id: int | None


def case_lock_and_last(*, case_id: int, rows: QuerySet[Any], field: str) -> LockedCase:
    """Lock the case's row, so that two writers cannot take the same number, and read the
    largest `field` among `rows` (which refer to the case as OuterRef("pk")) and the case's
    code, in one statement. Part of the caller's transaction."""
    last = Subquery(rows.order_by(f"-{field}").values(field)[:1])
    locked = Case.objects.select_for_update(of=("self",)).filter(pk=case_id).annotate(last=last)
    found = locked.values_list("last", "code_id").first()
    return LockedCase(found[0] or 0, found[1]) if found else LockedCase(0, None)


@dataclass(frozen=True)
class CheckedBeside:
    """What a draft's checks read besides its own text: the case's other current versions
    ({kind: version id}) and its code."""

    versions: dict[str, int]
    code_id: int | None


@dataclass(frozen=True)
class VersionDraft:
    """An artefact's next content, rendered and checked: the slow part of a version write,
    done before any transaction or lock (artefact_version_draft), so the write itself only
    writes (artefact_version_write)."""

    kind: str
    content: dict[str, Any]
    text: str
    check_flags: list[Any]
    rendered: bool  # the text was rendered from the content (an imported version keeps its own)
    check_versions: dict[str, int] | None = None  # None: flags given, not checked here
    checked_beside: CheckedBeside | None = None  # None: not checked beside the case's other texts
    # The cross-artefact checks' results of the case's other artefacts beside this text.
    others_checked: dict[str, list[CheckResultData]] = field(default_factory=dict)


def artefact_version_draft(
    *,
    case: Case,
    kind: str,
    content: dict[str, Any],
    text: str | None = None,
    check_flags: list[Any] | None = None,
    current: dict[str, ArtefactVersion] | None = None,
) -> VersionDraft:
    """Render (unless `text` is given) and check the next version of a case's artefact beside
    the case's `current` versions (read here when not given). Refuses a text over
    ARTEFACT_TEXT_MAX_CHARS, so the checks only ever read bounded input."""
    rendered = text is None
    text = rendering.render(kind, content) if text is None else text
    text_within_limit(text, limit=ARTEFACT_TEXT_MAX_CHARS, what=f"The {kind}")
    if check_flags is not None:
        return VersionDraft(kind=kind, content=content, text=text, check_flags=check_flags, rendered=rendered)
    if kind not in CHECKED_KINDS:
        return VersionDraft(kind=kind, content=content, text=text, check_flags=[], rendered=rendered, check_versions={})
    # Checked beside the case's other current texts, which are checked again beside this one.
    # Should they change before the write, the refresh after its commit checks again.
    current = current_versions(case=case) if current is None else current
    others = {other: version for other, version in current.items() if other != kind}
    texts = {other: ArtefactText(version.text, version.content) for other, version in others.items()}
    texts[kind] = ArtefactText(text, content)
    checked = checks_compute(case=case, kind=kind, texts=texts)
    return VersionDraft(
        kind=kind,
        content=content,
        text=text,
        check_flags=checked.flags,
        rendered=rendered,
        check_versions=checked.versions,
        checked_beside=CheckedBeside({other: version.pk for other, version in others.items()}, case.code_id),
        others_checked=cross_checks_beside(case=case, kind=kind, texts=texts),
    )


def artefact_version_write(
    *,
    case: Case,
    draft: VersionDraft,
    source: str,
    author: User | None = None,
    parent: ArtefactVersion | None = None,
    agent_call: AgentCall | None = None,
) -> ArtefactVersion:
    """Store a draft as the next version of its artefact, under the case's row lock, with what
    its text changes of the other artefacts' findings (a note edit changes what the dialogue's
    coverage finds), checked with the draft before any lock."""
    if source == VersionSource.IMPORTED and draft.rendered:
        raise ValueError("an imported version must keep its original text")
    with transaction.atomic(savepoint=False):
        same_kind = ArtefactVersion.objects.filter(case=OuterRef("pk"), kind=draft.kind)
        last, code_id = case_lock_and_last(case_id=case.pk, rows=same_kind, field="number")
        version = ArtefactVersion.objects.create(
            case=case,
            kind=draft.kind,
            number=last + 1,
            source=source,
            author=author,
            parent=parent,
            agent_call=agent_call,
            content=draft.content,
            text=draft.text,
            check_flags=draft.check_flags,
            check_versions=draft.check_versions or {},
        )
        if delivers_pair(kind=version.kind, source=version.source):
            _produced_count(case=case, version=version)
        current = current_version_checks(case=case)
        changed: dict[str, Any] = {}
        if version.source != VersionSource.HUMAN_DRAFT:
            changed = content_changed_fields(at=version.created_at)
            current |= _other_checks_store(case_id=case.pk, draft=draft, current=current, code_id=code_id)
            # A raw LLM note or dialogue is replaced by its polisher's within the same stage, before
            # any reviewer or export sees it: only the polished one is worth indexing (`manage.py
            # near_duplicates` catches up a case whose polisher failed).
            if version.kind in NEAR_DUPLICATE_KINDS and version.source != VersionSource.LLM_RAW:
                near_duplicates_index_version_on_commit(version=version)
        # The badge follows the latest version of each artefact, not any past one.
        fields = case_flag_fields(stored.flags for stored in current.values())
        case.has_check_flags, case.check_summary = fields["has_check_flags"], fields["check_summary"]
        Case.objects.filter(pk=case.pk).update(**fields, **changed)
        return version


def _other_checks_store(
    *, case_id: int, draft: VersionDraft, current: dict[str, StoredChecks], code_id: int | None
) -> dict[str, StoredChecks]:
    """Store the cross-artefact results of the case's other artefacts that the draft came with,
    merged with what their versions hold, when they were checked beside the versions still
    current and the same code; returns them as stored. Otherwise (or for flags given with the
    draft, not checked here) the case is checked again once the write commits."""
    beside = CheckedBeside({kind: stored.pk for kind, stored in current.items() if kind != draft.kind}, code_id)
    if not any(kind in current for kind in CHECKED_KINDS if kind != draft.kind) and draft.kind not in CHECKED_KINDS:
        return {}  # nothing checked beside it: a scenario of a case without a note or dialogue yet
    if draft.check_versions is None or draft.checked_beside != beside:
        codes = None if draft.check_versions is None else CROSS_ARTEFACT_CHECKS
        case_checks_refresh_on_commit(case_id=case_id, codes=codes)
        return {}
    stored = {}
    for kind, results in draft.others_checked.items():
        previous = current[kind]
        merged = checks_merge(
            kind=kind,
            results=results,
            previous_flags=previous.flags,
            previous_versions=previous.versions,
            codes=CROSS_ARTEFACT_CHECKS,
        )
        ArtefactVersion.objects.filter(pk=previous.pk).update(check_flags=merged.flags, check_versions=merged.versions)
        stored[kind] = StoredChecks(previous.pk, merged.flags, merged.versions)
    return stored


def _produced_count(*, case: Case, version: ArtefactVersion) -> None:
    """The case's first delivered dialogue makes it a produced pair of its batch."""
    earlier = case.versions.filter(kind=version.kind, number__lt=version.number, source__in=DELIVERED_SOURCES)
    if not earlier.exists():
        batch_counters_move(batch_id=case.batch_id, deltas={"produced_count": 1})


def artefact_version_create(
    *,
    case: Case,
    kind: str,
    content: dict[str, Any],
    source: str,
    author: User | None = None,
    parent: ArtefactVersion | None = None,
    agent_call: AgentCall | None = None,
    text: str | None = None,
    check_flags: list[Any] | None = None,
) -> ArtefactVersion:
    """Add the next version of a case's artefact: checked first, then written. `text`
    defaults to the rendered content; only imported versions pass their original text
    verbatim. A caller inside a transaction of its own drafts before opening it."""
    draft = artefact_version_draft(case=case, kind=kind, content=content, text=text, check_flags=check_flags)
    return artefact_version_write(
        case=case, draft=draft, source=source, author=author, parent=parent, agent_call=agent_call
    )


@dataclass(frozen=True)
class NewCase:
    """A case not saved yet, with the first version of each of its artefacts (an imported pair)."""

    case: Case
    drafts: list[VersionDraft]


def cases_with_versions_create(*, new_cases: list[NewCase], source: str) -> list[Case]:
    """Insert new cases and their first versions in two statements (one chunk of an import).
    Each draft becomes version 1 of its kind, and each case's badge follows them, as
    artefact_version_write would have set it one version at a time. The cases' review round
    began when they were built (round_started_at's default), before their versions."""
    for item in new_cases:
        fields = case_flag_fields(draft.check_flags for draft in item.drafts)
        item.case.has_check_flags, item.case.check_summary = fields["has_check_flags"], fields["check_summary"]
    cases = Case.objects.bulk_create([item.case for item in new_cases])
    ArtefactVersion.objects.bulk_create(
        ArtefactVersion(
            case=case,
            kind=draft.kind,
            number=1,
            source=source,
            content=draft.content,
            text=draft.text,
            check_flags=draft.check_flags,
            check_versions=draft.check_versions or {},
        )
        for case, item in zip(cases, new_cases, strict=True)
        for draft in item.drafts
    )
    for batch_id in {case.batch_id for case in cases}:
        added = [item for item in new_cases if item.case.batch_id == batch_id]
        produced = sum(any(delivers_pair(kind=d.kind, source=source) for d in item.drafts) for item in added)
        deltas = new_cases_deltas(statuses=[item.case.status for item in added], produced=produced)
        batch_counters_move(batch_id=batch_id, deltas=deltas)
    near_duplicates_index_on_commit(case_ids=[case.pk for case in cases])
    return cases
