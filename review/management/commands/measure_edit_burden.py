from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from review.services.edit_burden import missing_edit_burdens_record


class Command(BaseCommand):
    help = (
        "Measure the edit burden of approved pairs that have none yet (approved before the dashboards "
        "existed). New approvals are measured as they happen."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        measured = missing_edit_burdens_record()
        self.stdout.write(self.style.SUCCESS(f"Measured the edit burden of {measured} approved pair(s)."))
