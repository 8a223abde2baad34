"""Writes that every part of the product shares: moving a case through its state
machine and adding an immutable artefact version."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from generation import rendering
from generation.checks import version_check_flags
from generation.models import AgentCall, ArtefactKind, ArtefactVersion, Case, InvalidTransition, VersionSource


def case_transition(*, case: Case, to: str, error: str = "", expected: str | None = None) -> Case:
    """Move a case to status `to`, refusing what the state machine forbids.

    The UPDATE is conditional on the status read, so two workers racing on the same
    case cannot both move it: the loser gets InvalidTransition.
    """
    current = expected or case.status
    case.status = current
    case.ensure_transition(to)
    now = timezone.now()
    updated = Case.objects.filter(pk=case.pk, status=current).update(
        status=to, status_changed_at=now, updated_at=now, error=error, lock_version=F("lock_version") + 1
    )
    if not updated:
        case.refresh_from_db()
        raise InvalidTransition(f"Case {case.pk} is {case.status} now, not {current}; {current} -> {to} refused.")
    case.refresh_from_db(fields=["status", "status_changed_at", "updated_at", "error", "lock_version"])
    return case


def latest_version(*, case: Case, kind: str) -> ArtefactVersion | None:
    """The current version of an artefact. A draft (a refused, conflicting edit kept so no
    text is lost) is history, never the current version."""
    return case.versions.filter(kind=kind).exclude(source=VersionSource.HUMAN_DRAFT).order_by("-number").first()


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
    """Add the next version of a case's artefact. `text` defaults to the rendered content;
    only imported versions pass their original text verbatim."""
    if text is None:
        if source == VersionSource.IMPORTED:
            raise ValueError("an imported version must keep its original text")
        text = rendering.render(kind, content)
    with transaction.atomic():
        # Lock the case row so two writers cannot take the same version number.
        Case.objects.select_for_update().filter(pk=case.pk).first()
        if check_flags is None:
            note = latest_version(case=case, kind=ArtefactKind.NOTE) if kind == ArtefactKind.DIALOGUE else None
            check_flags = version_check_flags(
                kind=kind, content=content, text=text, note_content=note.content if note else None
            )
        last = case.versions.filter(kind=kind).aggregate(n=Max("number"))["n"] or 0
        version = ArtefactVersion.objects.create(
            case=case,
            kind=kind,
            number=last + 1,
            source=source,
            author=author,
            parent=parent,
            agent_call=agent_call,
            content=content,
            text=text,
            check_flags=check_flags,
        )
        # The badge follows the latest version of each artefact, not any past one.
        latest_flags = (latest_version(case=case, kind=other) for other in ArtefactKind.values)
        case.has_check_flags = any(bool(latest.check_flags) for latest in latest_flags if latest is not None)
        Case.objects.filter(pk=case.pk).update(has_check_flags=case.has_check_flags)
        return version
