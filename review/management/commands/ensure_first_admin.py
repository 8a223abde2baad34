from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from medsynth_site.roles import ADMIN, user_create


class Command(BaseCommand):
    help = "Create a first admin account when no user exists, printing its password once."

    def handle(self, *args: Any, **options: Any) -> None:
        if get_user_model().objects.exists():
            self.stdout.write("Accounts exist; no first admin created.")
            return
        username = os.environ.get("MEDSYNTH_ADMIN_USERNAME", "admin")
        _user, password = user_create(username=username, role=ADMIN)
        self.stdout.write(self.style.SUCCESS("First admin account created. This password is shown only once:"))
        self.stdout.write(f"  username: {username}\n  password: {password}")
