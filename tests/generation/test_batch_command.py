"""`manage.py batch pause|resume|cancel|retry-failed ID`: the batch page's buttons, headless."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from generation.models import BatchStatus, CaseStatus
from generation.services.pipeline import case_start
from tests.generation.pipeline_fakes import make_case, run_pending_steps
from tests.llm_replay import error_response, llm_replay

pytestmark = pytest.mark.django_db


def batch(*args):
    out = StringIO()
    call_command("batch", *[str(arg) for arg in args], stdout=out)
    return out.getvalue()


def test_pause_resume_and_cancel_from_the_command_line(django_capture_on_commit_callbacks):
    case = make_case()
    case_start(case=case)
    name = case.batch.name

    assert batch("pause", case.batch_id) == (
        f"Batch {case.batch_id} ({name}) paused: no new LLM call starts; the calls in flight finish and are kept.\n"
    )
    assert batch("pause", case.batch_id) == f"Batch {case.batch_id} ({name}) was already paused.\n"
    with django_capture_on_commit_callbacks():
        assert "resumed: 1 waiting step(s) sent to the workers again" in batch("resume", case.batch_id)
    assert "cancelled: 1 unfinished case(s) stopped" in batch("cancel", case.batch_id)
    case.refresh_from_db()
    case.batch.refresh_from_db()
    assert (case.status, case.batch.status) == (CaseStatus.CANCELLED, BatchStatus.CANCELLED)


def test_retry_failed_and_refusals_from_the_command_line():
    case = make_case()
    case_start(case=case)
    with llm_replay([error_response(404, "The model `test-model` does not exist")]):
        run_pending_steps()

    assert "1 failed case(s) sent back to the queue" in batch("retry-failed", case.batch_id)
    assert "0 failed case(s) sent back to the queue" in batch("retry-failed", case.batch_id)
    batch("cancel", case.batch_id)
    with pytest.raises(CommandError, match="The batch was cancelled; plan a new one instead."):
        batch("resume", case.batch_id)
    with pytest.raises(CommandError, match="No batch 999999."):
        batch("pause", 999999)
