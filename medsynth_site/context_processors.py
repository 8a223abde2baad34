from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from medsynth_site.roles import user_is_admin


def site(request: HttpRequest) -> dict[str, Any]:
    """Role flags for the navigation; cheap (group names are cached on the user)."""
    user = getattr(request, "user", None)
    return {"is_admin_user": user is not None and user_is_admin(user)}
