"""Browser tests: Playwright's sync API driving Debian's Chromium against pytest-django's
live server. Marked `e2e`; they need /usr/bin/chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """The sync Playwright API runs an event loop in this thread; Django's ORM calls from the
    tests are still plain synchronous calls. Only for this package: `check --deploy` in
    other tests must not see the variable."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(_orm_beside_playwright: None) -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def live_server(_plain_http_for_the_live_server: None, live_server: Any) -> Any:
    """The live server, with plain HTTP settings in place before its middleware is built
    (SecurityMiddleware reads SECURE_SSL_REDIRECT once, when the server thread starts)."""
    return live_server


@pytest.fixture(scope="session", autouse=True)
def _plain_http_for_the_live_server() -> Iterator[None]:
    plain = {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "STORAGES": {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    }
    with override_settings(**plain):
        yield


@pytest.fixture
def roles(transactional_db: None) -> None:
    """The role groups, whatever an earlier transactional test flushed."""
    from medsynth_site.roles import role_groups_sync

    role_groups_sync()


@pytest.fixture
def open_session(browser: Any, live_server: Any, roles: None) -> Iterator[Any]:
    """open_session(user) -> a Playwright page logged in as `user` (session cookie from force_login)."""
    contexts = []

    def open_for(user: Any) -> Any:
        client = Client()
        client.force_login(user)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_for
    for context in contexts:
        context.close()
