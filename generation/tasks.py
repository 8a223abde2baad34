"""Celery tasks: thin adapters that take ids and call one service.

LLM errors are retried inside generation.llm (the one retry owner), so these tasks never
autoretry; a redelivered task finds its step done and returns."""

from __future__ import annotations

from celery import shared_task

from generation.services import batches, pipeline


@shared_task(name="generation.tasks.run_pipeline_step", bind=True, ignore_result=True)
def run_pipeline_step(self, step_id: int) -> None:  # type: ignore[no-untyped-def]
    pipeline.pipeline_step_run(step_id=step_id, task_id=self.request.id or "")


@shared_task(name="generation.tasks.start_batch", ignore_result=True)
def start_batch(batch_id: int) -> None:
    batches.batch_start(batch_id=batch_id)
