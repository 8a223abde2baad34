"""Failed logins are limited per username and address, per address and site-wide; the
address is the connection's unless trusted proxies are configured."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
GUESS = "Summer2024!"


def _login(username: str, password: str = GUESS, *, address: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    client = Client(REMOTE_ADDR=address, headers=headers)
    return client.post(reverse("login"), {"username": username, "password": password}).status_code


def test_one_password_sprayed_over_many_usernames_from_one_address_is_locked_out(settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 8
    UserFactory(username="nurse")
    answers = [_login(f"user{number}", address="203.0.113.7") for number in range(8)]
    assert answers == [200] * 7 + [429]
    assert _login("nurse", PASSWORD, address="203.0.113.7") == 429
    assert _login("nurse", PASSWORD, address="198.51.100.20") == 302


def test_spraying_from_many_addresses_meets_the_site_wide_limit(settings):
    settings.LOGIN_FAILURE_LIMIT_SITE = 6
    UserFactory(username="nurse")
    answers = [_login(f"user{number}", address=f"203.0.113.{number}") for number in range(6)]
    assert answers == [200] * 5 + [429]
    assert _login("nurse", PASSWORD, address="198.51.100.20") == 429


def test_by_default_a_forged_forwarded_for_neither_locks_out_someone_else_nor_dodges_the_limit(settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 8
    UserFactory(username="nurse")
    victim = "198.51.100.20"
    for _ in range(5):
        _login("nurse", address="203.0.113.66", forwarded=victim)
    assert _login("nurse", PASSWORD, address=victim) == 302

    rotated = [_login(f"user{n}", address="203.0.113.66", forwarded=f"10.0.0.{n}") for n in range(8)]
    assert rotated[-1] == 429


def test_behind_a_trusted_proxy_the_address_it_appended_counts(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 8
    UserFactory(username="nurse")
    proxy = "10.0.0.1"
    # The attacker writes the left entries; the proxy appends the address it saw (the last).
    forged = [_login(f"user{n}", address=proxy, forwarded=f"198.51.100.{n}, 203.0.113.66") for n in range(8)]
    assert forged[-1] == 429
    assert _login("nurse", PASSWORD, address=proxy, forwarded="203.0.113.66") == 429
    assert _login("nurse", PASSWORD, address=proxy, forwarded="198.51.100.20") == 302
