"""Background jobs of the review app, on the `default` queue. Each takes an id, calls
one service and keeps its state in the database, so a redelivered job is harmless."""

from __future__ import annotations

from celery import shared_task

from review.datasets.export import dataset_export_job_run
from review.datasets.imports import dataset_import_job_run


@shared_task(queue="default", acks_late=True)
def dataset_export_run(export_id: int) -> None:
    dataset_export_job_run(export_id=export_id)


@shared_task(queue="default", acks_late=True)
def dataset_import_run(import_id: int) -> None:
    dataset_import_job_run(import_id=import_id)
