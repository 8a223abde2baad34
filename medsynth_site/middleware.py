"""Login for every page, also when the session expires under an htmx request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails


class HtmxLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Django's LoginRequiredMiddleware, except for htmx requests. Their redirect would be
    followed inside the request and the login page swapped into a panel over the form; they
    get a full-page navigation to the login page instead, which returns to the page the
    person was on (not to the partial's URL).

    The answer is 401, not 2xx: the page must not take it for a save that worked and drop
    what the person typed."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[Any, Any],
    ) -> HttpResponseBase | None:
        response = super().process_view(request, view_func, view_args, view_kwargs)
        htmx = HtmxDetails(request)
        if response is None or not htmx:
            return response
        page = htmx.current_url_abs_path or resolve_url(settings.LOGIN_REDIRECT_URL)
        login = redirect_to_login(
            page, resolve_url(self.get_login_url(view_func)), self.get_redirect_field_name(view_func)
        )
        return HttpResponseClientRedirect(login.url, status=401)
