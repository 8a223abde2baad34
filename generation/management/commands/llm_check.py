from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation import selectors
from generation.llm.health import EndpointHealth, endpoint_health_check
from generation.models import LlmEndpoint

COLUMNS = ("ENDPOINT", "MODEL", "REACHABLE", "MODEL SERVED", "STRUCTURED OUTPUT", "LATENCY")


def _mark(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


def _row(health: EndpointHealth) -> tuple[str, ...]:
    latency = f"{health.latency_ms} ms" if health.latency_ms is not None else "-"
    structured = _mark(health.structured_output)
    if health.structured_output is not None:
        structured = f"{structured} ({health.endpoint.structured_output_mode})"
    return (
        health.endpoint.name,
        health.model,
        _mark(health.reachable),
        _mark(health.model_served),
        structured,
        latency,
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


class Command(BaseCommand):
    help = (
        "Call each active LLM endpoint once and report: reachable, model served, structured output works, "
        "latency. Exits non-zero when any check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--endpoint", help="Check only this endpoint (by name), even if it is inactive")

    def _endpoints(self, name: str | None) -> list[LlmEndpoint]:
        if name:
            endpoint = LlmEndpoint.objects.filter(name=name).first()
            if endpoint is None:
                known = ", ".join(LlmEndpoint.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No LLM endpoint named '{name}'. Known endpoints: {known}.")
            return [endpoint]
        endpoints = list(selectors.active_endpoints())
        if not endpoints:
            raise CommandError("No active LLM endpoint. Run `manage.py configure_llm` or add one in the admin.")
        return endpoints

    def handle(self, *args: Any, **options: Any) -> None:
        results = [endpoint_health_check(endpoint=endpoint) for endpoint in self._endpoints(options["endpoint"])]
        self.stdout.write(_table([COLUMNS, *(_row(health) for health in results)]))
        for health in results:
            for problem in health.problems:
                self.stdout.write(self.style.ERROR(f"{health.endpoint.name}: {problem}"))
            if health.endpoint.is_local_demo:
                self.stdout.write(
                    self.style.WARNING(
                        f"{health.endpoint.name} is the local demo model: for trying the product, not for real data."
                    )
                )
        failed = [health.endpoint.name for health in results if not health.ok]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} endpoint(s) failed the check: {', '.join(failed)}.")
        self.stdout.write(self.style.SUCCESS(f"All {len(results)} endpoint(s) passed."))
