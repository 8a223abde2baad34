"""Per-reviewer limits on what spends LLM money: regenerations per hour.

Counted from the stored decisions (every regeneration is a ReviewDecision with action
`regenerate`), so the limit holds across processes and restarts without a cache. Admins
are exempt: they can launch whole batches, so a cap on their regenerations would guard
nothing.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from medsynth_site.roles import user_is_admin
from review.models import ReviewAction, ReviewDecision
from review.services.errors import RegenerationLimitReached

REGENERATION_WINDOW = timedelta(hours=1)


def regeneration_allowance_check(*, reviewer: User) -> None:
    """Refuse a regeneration when the reviewer has asked for REGENERATIONS_PER_HOUR of
    them in the last hour; the message says when the next one is possible."""
    if user_is_admin(reviewer):
        return
    limit: int = settings.REGENERATIONS_PER_HOUR
    if limit <= 0:
        raise RegenerationLimitReached("Reviewers cannot send items back for regeneration on this site; ask an admin.")
    since = timezone.now() - REGENERATION_WINDOW
    recent = ReviewDecision.objects.filter(reviewer=reviewer, action=ReviewAction.REGENERATE, created_at__gt=since)
    times = list(recent.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(times) < limit:
        return
    # The request that frees a place: the oldest of the newest `limit` leaves the window.
    wait = times[-1] - since
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    raise RegenerationLimitReached(
        f"You have sent {limit} items back for regeneration in the last hour, the most a reviewer may "
        f"(each one costs model time). You can send the next one in {minutes} minute{'s' if minutes != 1 else ''}; "
        "meanwhile approve, edit or reject."
    )
