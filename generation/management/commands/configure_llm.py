from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from generation.errors import DomainError
from generation.services.endpoints import default_endpoint_configure


class Command(BaseCommand):
    help = "Register the LLM endpoint the environment describes (a provider, or the local demo model)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            endpoint = default_endpoint_configure()
        except DomainError as refusal:
            raise CommandError(str(refusal)) from refusal
        where = endpoint.base_url or "the provider's default URL"
        self.stdout.write(f"Default LLM endpoint: {endpoint.name} ({endpoint.default_model} at {where}).")
        if endpoint.is_local_demo:
            self.stdout.write(
                self.style.WARNING(
                    "This is a tiny local demo model: its text is for trying the product, not clinical content. "
                    "Set OPENAI_API_KEY or LLM_BASE_URL to use a real provider."
                )
            )
