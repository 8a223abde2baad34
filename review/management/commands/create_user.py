from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from medsynth_site.roles import ROLES, PasswordRefused, UserExists, user_create


class Command(BaseCommand):
    help = "Create a clinician or admin account. Prints a generated password when none is given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", help="Omit to generate one")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            _user, password = user_create(
                username=options["username"], role=options["role"], password=options["password"]
            )
        except (UserExists, PasswordRefused) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Created {options['role']} {options['username']!r}."))
        if not options["password"]:
            self.stdout.write(f"Password: {password}")
