"""Failed-login throttling on top of django-axes, which records every failure.

Three limits, each counted over the cool-off window (AXES_COOLOFF_MINUTES):

- a username from one address (LOGIN_FAILURE_LIMIT_PER_ACCOUNT): guessing one password;
- one address, whatever the usernames (LOGIN_FAILURE_LIMIT_PER_ADDRESS): one password
  sprayed across many accounts;
- the whole site (LOGIN_FAILURE_LIMIT_SITE): spraying from many addresses.

Axes counts failures for one scope, the username and address pair, and locks out when that
count reaches its AXES_FAILURE_LIMIT; `failure_limit` is that limit, and drops to none left
when the address or the site has used up its own. No limit counts a username alone: anyone
could then lock anyone out by typing wrong passwords under their name.

The address is the connection's (REMOTE_ADDR). Behind reverse proxies, TRUSTED_PROXY_COUNT
says how many of them append to X-Forwarded-For; only the entries they wrote are believed,
so a forged header neither moves a failure onto someone else's address nor dodges a limit.
"""

from __future__ import annotations

import ipaddress

from axes.attempts import get_cool_off_threshold
from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


def client_ip_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the address failures are counted against."""
    remote: str | None = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    # Each trusted proxy appended the address it was reached from; entries further left came
    # from the client, and the client can write anything.
    if len(forwarded) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote


def _recent_failures(request: HttpRequest, **scope: str | None) -> int:
    recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request), **scope)
    total: int | None = recent.aggregate(total=Sum("failures_since_start"))["total"]
    return total or 0


def failure_limit(request: HttpRequest, credentials: dict[str, str] | None = None) -> int:
    """AXES_FAILURE_LIMIT: failures allowed to a username from this address; none when the
    address or the whole site has reached its own limit in the window."""
    address = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    if _recent_failures(request, ip_address=address) >= settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS:
        return 0
    if _recent_failures(request) >= settings.LOGIN_FAILURE_LIMIT_SITE:
        return 0
    return int(settings.LOGIN_FAILURE_LIMIT_PER_ACCOUNT)
