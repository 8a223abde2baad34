"""Celery tasks: thin adapters that take ids and call one service.

LLM errors are retried inside generation.llm (the one retry owner), so these tasks never
autoretry; a redelivered task finds its step done (or running under a live lease) and
returns. The recovery pass runs when a worker starts and on Celery beat's schedule."""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app, shared_task
from celery.signals import task_postrun, task_prerun, worker_ready
from django.db import close_old_connections

from generation.services import batches, pipeline, recovery
from generation.services.pipeline import provider_batches

logger = logging.getLogger(__name__)


@shared_task(name="generation.tasks.run_pipeline_step", bind=True, ignore_result=True)
def run_pipeline_step(self, step_id: int) -> None:  # type: ignore[no-untyped-def]
    pipeline.pipeline_step_run(step_id=step_id, task_id=self.request.id or "")


@shared_task(name="generation.tasks.start_batch", ignore_result=True)
def start_batch(batch_id: int) -> None:
    batches.batch_start(batch_id=batch_id)


def broker_queue_size(name: str) -> int | None:
    """How many messages wait in a broker queue (those a worker has taken are not counted);
    None when the broker cannot say."""
    try:
        with current_app.connection_for_read() as connection, connection.channel() as channel:
            # kombu's type stubs leave queue_declare off StdChannel; every transport's channel has it.
            declared = channel.queue_declare(queue=name, passive=False)  # type: ignore[attr-defined]
            return int(declared.message_count)
    except Exception:
        logger.warning("Could not count the messages of queue %r.", name, exc_info=True)
        return None


def pipeline_recover_now() -> recovery.RecoveryReport:
    # The queue the steps go to, as the Celery app routes them (medsynth_site/celery.py).
    steps_queue = current_app.amqp.router.route({}, run_pipeline_step.name)["queue"].name
    return recovery.pipeline_recover(generation_queue_size=broker_queue_size(steps_queue))


@shared_task(name="generation.tasks.recover_steps", ignore_result=True)
def recover_steps() -> None:
    pipeline_recover_now()


@shared_task(name="generation.tasks.provider_batches_tick", ignore_result=True)
def provider_batches_tick() -> None:
    provider_batches.provider_batches_tick()


@task_prerun.connect
@task_postrun.connect
def _connections_kept_as_between_requests(sender: Any = None, **_: Any) -> None:
    # What Django does around each request: a connection past CONN_MAX_AGE, or one that failed
    # and no longer answers, is closed; the others are kept for the next task of this thread
    # (medsynth_site/celery.py turns off the fixup's close after every task). A task run eagerly
    # runs in its caller's connection and transaction, which are the caller's to keep.
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


@worker_ready.connect
def _recover_when_a_worker_starts(**_: Any) -> None:
    # The steps a killed worker left behind resume as soon as a worker is back.
    try:
        pipeline_recover_now()
    except Exception:
        logger.exception("The recovery pass at worker start failed; beat runs it again shortly.")
