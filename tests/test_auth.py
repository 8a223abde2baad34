"""Login is required everywhere; roles grant what they should; failed logins are rate-limited."""

import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from medsynth_site.roles import ADMIN, CLINICIAN, user_is_admin, user_is_clinician
from tests.factories import UserFactory

PUBLIC_URL_NAMES = {"login"}
SAMPLE_ARGUMENTS = {"int": 1, "str": "x", "slug": "x", "path": "x", "uuid": uuid.uuid4()}


def named_urls(patterns=None, namespace=""):
    """Every named URL of the site (admin apart), with sample arguments for its converters."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_urls(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            converters = getattr(entry.pattern, "converters", {})
            kwargs = {
                name: SAMPLE_ARGUMENTS.get(type(converter).__name__.replace("Converter", "").lower(), "x")
                for name, converter in converters.items()
            }
            yield f"{namespace}{entry.name}", kwargs


PROTECTED = sorted({(name, tuple(kwargs.items())) for name, kwargs in named_urls() if name not in PUBLIC_URL_NAMES})


def test_the_site_has_protected_urls_to_check():
    assert ("home", ()) in PROTECTED


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs"), PROTECTED)
def test_every_page_requires_login(client, name, kwargs):
    url = reverse(name, kwargs=dict(kwargs))
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code in (302, 405), f"{method.__name__.upper()} {url} answered {response.status_code}"
        if response.status_code == 302:
            assert response.url.startswith(reverse("login")), f"{url} redirects to {response.url}"


@pytest.mark.django_db
def test_the_login_page_is_public(client):
    assert client.get(reverse("login")).status_code == 200


@pytest.mark.django_db
def test_the_admin_site_is_for_staff_only(clinician_client, admin_member_client):
    assert clinician_client.get("/admin/").status_code == 302
    assert admin_member_client.get("/admin/").status_code == 200
    assert admin_member_client.get("/admin/generation/icdcode/").status_code == 200


@pytest.mark.django_db
def test_role_groups_carry_their_permissions(clinician, admin_member):
    assert set(Group.objects.values_list("name", flat=True)) >= {CLINICIAN, ADMIN}
    assert user_is_clinician(clinician)
    assert not user_is_admin(clinician)
    assert clinician.has_perm("review.add_surveyresponse")
    assert not clinician.has_perm("review.adjudicate_case")
    assert not clinician.has_perm("generation.add_surveysnapshot")
    assert user_is_admin(admin_member)
    assert user_is_clinician(admin_member)
    for permission in (
        "review.adjudicate_case",
        "review.assign_reviewers",
        "generation.add_surveysnapshot",
        "review.change_guideline",
        "review.add_datasetexport",
    ):
        assert admin_member.has_perm(permission)
    assert not user_is_clinician(UserFactory())


@pytest.mark.django_db
def test_failed_logins_are_rate_limited():
    UserFactory(username="nurse")
    client = Client(REMOTE_ADDR="10.9.8.7")
    for _ in range(4):
        response = client.post(reverse("login"), {"username": "nurse", "password": "wrong"})
        assert response.status_code == 200
    assert client.post(reverse("login"), {"username": "nurse", "password": "wrong"}).status_code == 429
    locked = client.post(reverse("login"), {"username": "nurse", "password": "correct horse battery staple"})
    assert locked.status_code == 429
    assert b"Too many failed log-in attempts" in locked.content


@pytest.mark.django_db
def test_a_real_login_through_the_form_works():
    UserFactory(username="doctor")
    client = Client()
    response = client.post(reverse("login"), {"username": "doctor", "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
