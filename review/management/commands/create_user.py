from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from medsynth_site.roles import ADMIN, ROLES


def user_create(*, username: str, role: str, password: str | None = None) -> tuple[Any, str]:
    """Create a user in a role; returns (user, password). Admins are also staff."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise CommandError(f"User {username!r} already exists.")
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password, is_staff=role == ADMIN)
        user.groups.add(Group.objects.get(name=role))
    return user, password


class Command(BaseCommand):
    help = "Create a clinician or admin account. Prints a generated password when none is given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", help="Omit to generate one")

    def handle(self, *args: Any, **options: Any) -> None:
        _user, password = user_create(username=options["username"], role=options["role"], password=options["password"])
        self.stdout.write(self.style.SUCCESS(f"Created {options['role']} {options['username']!r}."))
        if not options["password"]:
            self.stdout.write(f"Password: {password}")
