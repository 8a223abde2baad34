"""Admins assign reviewers to a case's stage, one case at a time or a whole filtered queue
at once; a decision completes the reviewer's assignment."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth.models import User
from django.db import models, transaction

from generation.models import Case
from review.models import ReviewerAssignment
from review.services.errors import ReviewError


def reviewers_assign(
    *, case: Case, stage: str, reviewers: Iterable[User], assigned_by: User
) -> list[ReviewerAssignment]:
    assignments = []
    for reviewer in reviewers:
        assignment, _created = ReviewerAssignment.objects.get_or_create(
            case=case, stage=stage, reviewer=reviewer, defaults={"assigned_by": assigned_by}
        )
        assignments.append(assignment)
    return assignments


class AssignmentMode(models.TextChoices):
    ROUND_ROBIN = "round_robin", "Round-robin, case by case"
    CHAPTER = "chapter", "By ICD-10 chapter: each chapter to the same reviewers"
    SPECIALTY = "specialty", "By specialty (physician role): each role to the same reviewers"


def _group_key(case: Case, mode: str) -> str:
    if mode == AssignmentMode.CHAPTER:
        return case.code.chapter if case.code else ""  # cases with their code to be assigned go together
    return case.role.name if case.role else ""


def _groups(cases: Sequence[Case], mode: str) -> list[list[Case]]:
    """The cases that go to the same reviewers: each case alone (round-robin), or all
    cases of a chapter / physician role, largest group first so the load evens out."""
    if mode == AssignmentMode.ROUND_ROBIN:
        return [[case] for case in cases]
    grouped: dict[str, list[Case]] = {}
    for case in cases:
        key = _group_key(case, mode)
        grouped.setdefault(key, []).append(case)
    return sorted(grouped.values(), key=len, reverse=True)


def assignment_plan(*, cases: Sequence[Case], reviewers: Sequence[User], mode: str) -> dict[Case, list[User]]:
    """Who reviews what. Each case gets as many reviewers as it needs reviews (at most all
    of them); each group goes to the reviewers with the fewest cases so far, ties in the
    order given, so round-robin takes the reviewers in turn."""
    if mode not in AssignmentMode.values:
        raise ReviewError(f"Unknown way to share out the queue: {mode!r}.")
    if not reviewers:
        raise ReviewError("Choose at least one reviewer.")
    load = dict.fromkeys(range(len(reviewers)), 0)
    plan: dict[Case, list[User]] = {}
    for group in _groups(cases, mode):
        size = min(max(case.reviews_required for case in group), len(reviewers))
        team = sorted(load, key=lambda position: (load[position], position))[:size]
        for case in group:
            chosen = team[: min(case.reviews_required, size)]
            plan[case] = [reviewers[position] for position in chosen]
            for position in chosen:
                load[position] += 1
    return plan


def queue_assign(
    *, cases: Iterable[Case], stage: str, reviewers: Sequence[User], mode: str, assigned_by: User
) -> list[ReviewerAssignment]:
    """Share out a queue's cases (see selectors.cases_to_assign) among `reviewers`."""
    plan = assignment_plan(cases=list(cases), reviewers=reviewers, mode=mode)
    assignments = [
        ReviewerAssignment(case=case, stage=stage, reviewer=reviewer, assigned_by=assigned_by)
        for case, chosen in plan.items()
        for reviewer in chosen
    ]
    with transaction.atomic():
        # An assignment someone made meanwhile is kept once (case, stage and reviewer are unique).
        return ReviewerAssignment.objects.bulk_create(assignments, ignore_conflicts=True)
