from medsynth_site.celery import app


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
