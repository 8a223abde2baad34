"""The shared per-endpoint limits, on the database backend and on Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis
from django.db import connection

from generation.models import LlmRateLease
from generation.ratelimit import (
    CapacityTimeout,
    DatabaseLimiter,
    EndpointLimits,
    RedisLimiter,
    endpoint_capacity,
    shared_limiter,
)
from tests.factories import LlmEndpointFactory

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_or_skip():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return client


@pytest.fixture(params=["database", "redis"])
def limiter(request):
    if request.param == "database":
        yield DatabaseLimiter()
        return
    client = _redis_or_skip()
    prefix = f"test-ratelimit:{uuid.uuid4().hex}"
    yield RedisLimiter(client, prefix=prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def limits_for(endpoint, **overrides):
    return EndpointLimits(**({**EndpointLimits.of(endpoint).__dict__} | overrides))


@pytest.mark.django_db
def test_no_more_slots_than_max_concurrency_are_handed_out(limiter):
    limits = limits_for(LlmEndpointFactory(max_concurrency=2))

    assert limiter.try_acquire_slot(limits, "a")
    assert limiter.try_acquire_slot(limits, "b")
    assert not limiter.try_acquire_slot(limits, "c")
    limiter.release_slot(limits, "a")
    assert limiter.try_acquire_slot(limits, "c")


@pytest.mark.django_db
def test_slots_of_other_endpoints_do_not_count(limiter):
    busy = limits_for(LlmEndpointFactory(max_concurrency=1))
    idle = limits_for(LlmEndpointFactory(max_concurrency=1))

    assert limiter.try_acquire_slot(busy, "a")
    assert limiter.try_acquire_slot(idle, "b")


@pytest.mark.django_db
def test_the_slot_of_a_dead_worker_frees_itself_when_its_lease_expires(limiter):
    endpoint = LlmEndpointFactory(max_concurrency=1)
    short_lease = limits_for(endpoint, lease_seconds=0)
    assert limiter.try_acquire_slot(short_lease, "crashed-worker")  # never released
    time.sleep(0.01)

    assert limiter.try_acquire_slot(limits_for(endpoint), "next-worker")
    assert not limiter.try_acquire_slot(limits_for(endpoint), "third-worker")


@pytest.mark.django_db
def test_requests_per_minute_are_capped_and_the_wait_is_reported(limiter):
    limits = limits_for(LlmEndpointFactory(requests_per_minute=2))

    assert limiter.try_reserve_request(limits, "r1", 10) == 0
    assert limiter.try_reserve_request(limits, "r2", 10) == 0
    wait = limiter.try_reserve_request(limits, "r3", 10)
    assert 55 < wait <= 60


@pytest.mark.django_db
def test_tokens_per_minute_count_the_settled_usage(limiter):
    limits = limits_for(LlmEndpointFactory(tokens_per_minute=1000))

    assert limiter.try_reserve_request(limits, "r1", 600) == 0
    assert limiter.try_reserve_request(limits, "r2", 600) > 0
    limiter.settle_request(limits, "r1", 150)
    assert limiter.try_reserve_request(limits, "r2", 600) == 0


@pytest.mark.django_db
def test_one_request_bigger_than_the_whole_token_budget_still_goes_alone(limiter):
    limits = limits_for(LlmEndpointFactory(tokens_per_minute=1000))

    assert limiter.try_reserve_request(limits, "huge", 5000) == 0
    assert limiter.try_reserve_request(limits, "next", 10) > 0


@pytest.mark.django_db
def test_a_caller_gives_up_when_the_window_stays_full(limiter):
    endpoint = LlmEndpointFactory(requests_per_minute=1)
    sleeps = []
    with endpoint_capacity(endpoint=endpoint, estimated_tokens=10, limiter=limiter, sleep=sleeps.append):
        pass
    with (
        pytest.raises(CapacityTimeout, match="per-minute limits"),
        endpoint_capacity(endpoint=endpoint, estimated_tokens=10, limiter=limiter, sleep=sleeps.append, max_wait=20),
    ):
        pass

    assert 20 <= sum(sleeps) < 21
    # The slot taken while waiting is given back.
    assert limiter.try_acquire_slot(limits_for(endpoint, max_concurrency=1), "after")


def _run_in_threads(*, endpoint, limiter, workers: int, hold_seconds: float) -> int:
    """Start `workers` threads that each hold the endpoint for a while; the most seen in flight at once."""
    in_flight = 0
    most = 0
    lock = threading.Lock()
    errors = []

    def work():
        nonlocal in_flight, most
        try:
            with endpoint_capacity(endpoint=endpoint, estimated_tokens=1, limiter=limiter, sleep=time.sleep):
                with lock:
                    in_flight += 1
                    most = max(most, in_flight)
                time.sleep(hold_seconds)
                with lock:
                    in_flight -= 1
        except Exception as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return most


@pytest.mark.django_db(transaction=True)
def test_the_concurrency_cap_holds_across_threads(limiter):
    endpoint = LlmEndpointFactory(max_concurrency=2)

    most = _run_in_threads(endpoint=endpoint, limiter=limiter, workers=6, hold_seconds=0.15)

    assert most == 2
    assert not LlmRateLease.objects.exists()


def test_the_shared_limiter_follows_the_broker(settings):
    settings.CELERY_BROKER_URL = "filesystem://"
    assert isinstance(shared_limiter(), DatabaseLimiter)
    settings.CELERY_BROKER_URL = REDIS_URL
    assert isinstance(shared_limiter(), RedisLimiter)
