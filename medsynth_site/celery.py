"""The Celery app: two queues, late acks, one task at a time per worker slot.

`generation` carries the long LLM steps (run it with a thread pool: the steps wait on
the network, not the CPU); `default` carries everything else (planning, exports).
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medsynth_site.settings")

app = Celery("medsynth")
# CELERY_* settings (the broker, the task time limits, ...) become the app's configuration.
app.config_from_object("django.conf:settings", namespace="CELERY")

# Each queue its own exchange and key, so a message is delivered to one queue only.
app.conf.task_queues = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("default", "generation")
)
app.conf.task_default_queue = "default"
app.conf.task_routes = {"generation.tasks.run_pipeline_step": {"queue": "generation"}}
# Tasks are idempotent (their state is in the database), so a task lost with its
# worker is safely redelivered.
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 1
app.conf.broker_connection_retry_on_startup = True
app.conf.worker_hijack_root_logger = False
# Celery's Django fixup closes a task's database connections before and after every task unless
# CELERY_DB_REUSE_MAX is set: a new PostgreSQL connection (a new server process) per step, which
# cost more CPU than the step itself. Set out of reach, the fixup never closes them; they are
# kept as Django keeps them between requests (CONN_MAX_AGE, health checks), by
# close_old_connections around each task (generation.tasks).
app.conf["CELERY_DB_REUSE_MAX"] = 2**62

app.autodiscover_tasks()
