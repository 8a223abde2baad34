"""Set up, launch and inspect a batch in a database that the test process itself does not use.

The tests that run real processes (a worker killed at random, `make run` interrupted) give
those processes their own data folder or database, so the test reads and writes it the same
way: `python -m tests.pipeline_probe COMMAND ...` with the processes' environment. Each
command prints one JSON object.

    setup --base-url URL --codes N [--timeout S]   ICD codes and an endpoint "fake" on URL
    launch --codes A,B --per-code K                plan and start a batch (as `manage.py generate` does)
    progress --batch ID                            in-flight cases and unsettled steps
    wait --batch ID --seconds S                    progress, once the batch has settled or S have passed
    report --batch ID                              everything the chaos test checks
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from typing import Any

ENDPOINT = "fake"
MODEL = "fake-model"


def _setup(args: argparse.Namespace) -> dict[str, Any]:
    from generation.models import IcdCode, LlmEndpoint, LlmModel, StructuredOutputMode

    codes = []
    for index in range(args.codes):
        code = f"Z{90 + index // 100}.{index % 100:02d}"
        IcdCode.objects.get_or_create(
            code=code,
            defaults={
                "code_compact": code.replace(".", ""),
                "description": f"Test condition number {index}",
                "chapter": "21",
                "chapter_title": "Factors influencing health status",
                "block": "Z77-Z99",
                "block_title": "Test block",
                "depth": 2,
                "is_billable": True,
            },
        )
        codes.append(code)
    endpoint, _ = LlmEndpoint.objects.update_or_create(
        name=ENDPOINT,
        defaults={
            "base_url": args.base_url,
            "api_key_env": "",
            "default_model": MODEL,
            "structured_output_mode": StructuredOutputMode.JSON_SCHEMA,
            # Slots a killed worker held free themselves only after timeout + 30 s.
            "max_concurrency": 64,
            "timeout_seconds": args.timeout,
        },
    )
    LlmModel.objects.get_or_create(endpoint=endpoint, name=MODEL)
    return {"codes": codes}


def _launch(args: argparse.Namespace) -> dict[str, Any]:
    from generation.services.batches import BatchRequest, batch_create

    batch = batch_create(
        request=BatchRequest(codes=args.codes.split(","), pairs_per_code=args.per_code, endpoint_name=ENDPOINT)
    )
    return {"batch": batch.pk, "planned": batch.planned_count}


def _progress(args: argparse.Namespace) -> dict[str, Any]:
    from generation.models import IN_FLIGHT_STATUSES, Case, GenerationBatch, PipelineStep, StepStatus

    batch = GenerationBatch.objects.get(pk=args.batch)
    steps = PipelineStep.objects.filter(case__batch=batch)
    return {
        "batch_status": batch.status,
        "in_flight": Case.objects.filter(batch=batch, status__in=IN_FLIGHT_STATUSES).count(),
        "pending": steps.filter(status=StepStatus.PENDING).count(),
        "running": steps.filter(status=StepStatus.RUNNING).count(),
        "succeeded": steps.filter(status=StepStatus.SUCCEEDED).count(),
    }


def _settled(progress: dict[str, Any]) -> bool:
    return progress["batch_status"] == "completed" and not (
        progress["in_flight"] or progress["pending"] or progress["running"]
    )


def _wait(args: argparse.Namespace) -> dict[str, Any]:
    """Poll in this one process (a probe per poll would cost a Django start-up each)."""
    deadline = time.monotonic() + args.seconds
    while True:
        progress = _progress(args)
        if _settled(progress) or time.monotonic() > deadline:
            return {**progress, "settled": _settled(progress)}
        time.sleep(1)


def _report(args: argparse.Namespace) -> dict[str, Any]:
    from generation.models import AgentCall, ArtefactVersion, Case, GenerationBatch, PipelineStep

    batch = GenerationBatch.objects.get(pk=args.batch)
    cases = Case.objects.filter(batch=batch)
    steps = PipelineStep.objects.filter(case__batch=batch)
    versions = ArtefactVersion.objects.filter(case__batch=batch)
    versions_per_step = Counter(versions.exclude(agent_call=None).values_list("agent_call__step_id", flat=True))
    return {
        "batch_status": batch.status,
        "planned": batch.planned_count,
        "cases": [
            {"id": case_id, "status": status, "error": error}
            for case_id, status, error in cases.values_list("pk", "status", "error")
        ],
        "steps": [
            {"id": step_id, "case": case_id, "agent": agent, "attempt": attempt, "status": status, "claims": claims}
            for step_id, case_id, agent, attempt, status, claims in steps.values_list(
                "pk", "case_id", "agent", "attempt", "status", "claim_count"
            )
        ],
        "versions": [
            {"case": case_id, "kind": kind, "source": source, "step": step_id}
            for case_id, kind, source, step_id in versions.values_list(
                "case_id", "kind", "source", "agent_call__step_id"
            )
        ],
        "steps_with_two_versions": [step_id for step_id, count in versions_per_step.items() if count > 1],
        "calls": [
            {"request_id": request_id, "error_kind": error_kind, "step": step_id}
            for request_id, error_kind, step_id in AgentCall.objects.filter(case__batch=batch).values_list(
                "provider_request_id", "error_kind", "step_id"
            )
        ],
    }


COMMANDS = {"setup": _setup, "launch": _launch, "progress": _progress, "wait": _wait, "report": _report}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.pipeline_probe")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup")
    setup.add_argument("--base-url", required=True)
    setup.add_argument("--codes", type=int, default=1)
    setup.add_argument("--timeout", type=int, default=10)
    launch = commands.add_parser("launch")
    launch.add_argument("--codes", required=True)
    launch.add_argument("--per-code", type=int, default=1)
    for name in ("progress", "report"):
        commands.add_parser(name).add_argument("--batch", type=int, required=True)
    wait = commands.add_parser("wait")
    wait.add_argument("--batch", type=int, required=True)
    wait.add_argument("--seconds", type=float, default=0)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")
    import django

    django.setup()
    print(json.dumps(COMMANDS[args.command](args)))


if __name__ == "__main__":
    main(sys.argv[1:])
