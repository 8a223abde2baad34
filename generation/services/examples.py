"""Writes about in-context examples: the provenance record of every agent call that was
shown approved cases as worked examples."""

from __future__ import annotations

from collections.abc import Sequence

from generation.examples import WorkedExample
from generation.models import AgentCall, InContextExample


def in_context_examples_record(*, call: AgentCall, examples: Sequence[WorkedExample]) -> list[InContextExample]:
    """Record which approved cases `call` was shown (shipped examples are not cases: none recorded)."""
    rows = [
        InContextExample(call=call, case_id=call.case_id, example_case_id=example.approved_case_id, position=position)
        for position, example in enumerate(examples, start=1)
        if example.approved_case_id is not None and call.case_id is not None
    ]
    return InContextExample.objects.bulk_create(rows)
