from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import AdminFactory, ClinicianFactory


@pytest.fixture(autouse=True)
def _plain_http_and_unhashed_static(settings):
    """Tests talk plain HTTP to the test client and a live server, with no collectstatic."""
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _process_caches_off(settings):
    """Tests change approvals, example rules, variables, roles and prices and look at the next
    prompt or call at once: no process cache (generation/caching.py; tests/test_caching.py and
    tests/generation/test_examples.py test the caches themselves)."""
    settings.EXAMPLE_CANDIDATES_CACHE_SECONDS = 0
    settings.REFERENCE_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _agreement_counted_each_time(settings):
    """Rolled-back tests can record decisions with the same ids and count again (SQLite reuses
    ids): no process cache of the agreement tally (tests/review/test_agreement.py tests it)."""
    settings.AGREEMENT_TALLY_CACHE = False


@pytest.fixture
def clinician(db):
    return ClinicianFactory()


@pytest.fixture
def admin_member(db):
    """A user in the `admin` role (staff, not superuser)."""
    return AdminFactory()


@pytest.fixture
def clinician_client(clinician) -> Client:
    client = Client()
    client.force_login(clinician)
    return client


@pytest.fixture
def admin_member_client(admin_member) -> Client:
    client = Client()
    client.force_login(admin_member)
    return client
