import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest

from medsynth_site.celery import app

ROOT = Path(__file__).resolve().parent.parent


def route(task_name: str) -> tuple[str, str]:
    queue = app.amqp.router.route({}, task_name)["queue"]
    return queue.name, queue.routing_key


def test_llm_steps_go_to_the_generation_queue_only():
    assert route("generation.tasks.run_pipeline_step") == ("generation", "generation")


def test_other_tasks_go_to_the_default_queue():
    assert route("review.tasks.dataset_export_run") == ("default", "default")


def test_workers_ack_late_one_task_at_a_time():
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


def _time_limits(tmp_path: Path, **env: str) -> str:
    """The settings' and the Celery app's time limits, read in a fresh process."""
    code = """
        print(settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT,
              app.conf.task_soft_time_limit, app.conf.task_time_limit)
    """
    return _settings_read_in_a_fresh_process(tmp_path, code, **env)


def test_the_time_limits_are_settings_read_from_the_environment(tmp_path):
    assert _time_limits(tmp_path) == "3600 3660 3600 3660"
    assert _time_limits(tmp_path, CELERY_TASK_SOFT_TIME_LIMIT="90", CELERY_TASK_TIME_LIMIT="120") == "90 120 90 120"


def _settings_read_in_a_fresh_process(tmp_path: Path, code: str, **env: str) -> str:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "LLM_", "PIPELINE_"))}
    clean |= {"MEDSYNTH_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "medsynth_site.settings", **env}
    prelude = "import django; django.setup()\nfrom django.conf import settings\nfrom medsynth_site.celery import app\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_redis_visibility_timeout_outlasts_the_longest_step(tmp_path):
    code = """
        print(settings.PIPELINE_STEP_TIME_LIMIT, app.conf.broker_transport_options["visibility_timeout"])
    """
    redis = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/9"}
    # 6 attempts x 120 s + 120 s of retry waits + 900 s of waiting for a slot; twice that plus the lease.
    assert _settings_read_in_a_fresh_process(tmp_path, code, **redis) == "1740 3600"
    assert _settings_read_in_a_fresh_process(tmp_path, code, **redis, LLM_TIMEOUT_SECONDS="600") == "4620 9360"
    assert _settings_read_in_a_fresh_process(tmp_path, code, **redis, CELERY_VISIBILITY_TIMEOUT="7200") == "1740 7200"


def test_beat_runs_the_recovery_pass_on_its_interval(tmp_path):
    code = """
        entry = app.conf.beat_schedule["recover-pipeline-steps"]
        print(entry["task"], entry["schedule"], entry["options"]["expires"])
    """
    assert _settings_read_in_a_fresh_process(tmp_path, code) == "generation.tasks.recover_steps 60.0 60.0"
    assert (
        _settings_read_in_a_fresh_process(tmp_path, code, PIPELINE_RECOVERY_INTERVAL_SECONDS="15")
        == "generation.tasks.recover_steps 15.0 15.0"
    )


def test_an_idle_embedded_worker_looks_for_messages_ten_times_a_second(tmp_path):
    # kombu's default (1 s) made each pipeline step wait about a second for its message (make bench).
    code = """
        print(app.conf.broker_transport_options["polling_interval"])
    """
    assert _settings_read_in_a_fresh_process(tmp_path, code) == "0.1"


def _a_task_runs_in_a_worker() -> None:
    """What a worker does around a task: Celery's Django fixup, then the task's signals."""
    from celery.fixups.django import DjangoWorkerFixup
    from celery.signals import task_postrun, task_prerun

    import generation.tasks  # noqa: F401 - a worker imports its tasks, and their signal handlers, at start

    fixup = DjangoWorkerFixup(app)
    sender = mock.Mock(request=mock.Mock(is_eager=False))
    for hook, signal in ((fixup.on_task_prerun, task_prerun), (fixup.on_task_postrun, task_postrun)):
        hook(sender)
        signal.send(sender=sender)


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_between_tasks_until_it_is_too_old():
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the SQLite test database is in memory, which Django never closes; CI runs this on PostgreSQL")
    connection.ensure_connection()
    kept = connection.connection
    connection.close_at = time.monotonic() + 60  # as with CONN_MAX_AGE=60, the PostgreSQL setting
    _a_task_runs_in_a_worker()
    assert connection.connection is kept  # not a new connection (a new server process) per task

    connection.close_at = time.monotonic() - 1  # past its age: closed, as Django closes it between requests
    _a_task_runs_in_a_worker()
    assert connection.connection is None
