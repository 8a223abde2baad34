"""Per-endpoint limits shared by every worker process and machine: calls in flight
(max_concurrency) and requests / tokens per minute.

Two backends with one behaviour: Redis when CELERY_BROKER_URL is a redis:// URL (the workers
already share it), otherwise the database (a row lock on the endpoint serialises the bookkeeping;
on SQLite the IMMEDIATE transactions do). A slot is a lease that expires, so a worker killed
mid-call frees its slot after `timeout_seconds + LEASE_MARGIN_SECONDS` at the latest.

Use it around one HTTP request, never around a backoff pause:

    with endpoint_capacity(endpoint=endpoint, estimated_tokens=900) as reservation:
        reply = send(...)
        reservation.settle(tokens=reply.total_tokens)
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from generation.models import LeaseKind, LlmEndpoint, LlmRateLease

WINDOW_SECONDS = 60
LEASE_MARGIN_SECONDS = 30
POLL_SECONDS = 0.25
DEFAULT_MAX_WAIT_SECONDS = 900.0


class CapacityTimeout(Exception):
    """The endpoint stayed at its limits for longer than a caller may wait."""


@dataclass(frozen=True)
class EndpointLimits:
    endpoint_id: int
    max_concurrency: int
    requests_per_minute: int | None
    tokens_per_minute: int | None
    lease_seconds: int

    @classmethod
    def of(cls, endpoint: LlmEndpoint) -> EndpointLimits:
        return cls(
            endpoint_id=endpoint.pk,
            max_concurrency=max(endpoint.max_concurrency, 1),
            requests_per_minute=endpoint.requests_per_minute or None,
            tokens_per_minute=endpoint.tokens_per_minute or None,
            lease_seconds=endpoint.timeout_seconds + LEASE_MARGIN_SECONDS,
        )


class LimiterBackend(Protocol):
    def try_acquire_slot(self, limits: EndpointLimits, lease_id: str) -> bool: ...

    def release_slot(self, limits: EndpointLimits, lease_id: str) -> None: ...

    def try_reserve_request(self, limits: EndpointLimits, request_id: str, tokens: int) -> float:
        """0 when the request is counted in the window, else the seconds until it may fit."""
        ...

    def settle_request(self, limits: EndpointLimits, request_id: str, tokens: int) -> None: ...


def _is_lock_contention(error: OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "deadlock" in message


def _busy_is_retried(default: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """SQLite can report a lock instead of waiting (shared-cache databases ignore the busy timeout);
    a decision that met one is simply "not now", and the caller polls again."""

    def decorate(decide: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(decide)
        def decided(*args: Any, **kwargs: Any) -> Any:
            try:
                return decide(*args, **kwargs)
            except OperationalError as error:
                if not _is_lock_contention(error):
                    raise
                return default

        return decided

    return decorate


def _until_written(write: Callable[[], Any]) -> None:
    """A release must not be lost to lock contention, or the slot stays taken until its lease expires."""
    for _ in range(200):
        try:
            write()
            return
        except OperationalError as error:
            if not _is_lock_contention(error):
                raise
            time.sleep(random.uniform(0.005, 0.02))  # noqa: S311 - jitter
    write()


class DatabaseLimiter:
    """Leases as rows of LlmRateLease; each decision runs under a lock on the endpoint's row."""

    @staticmethod
    def _lock(limits: EndpointLimits) -> None:
        list(LlmEndpoint.objects.select_for_update().filter(pk=limits.endpoint_id).values_list("pk"))
        LlmRateLease.objects.filter(endpoint_id=limits.endpoint_id, expires_at__lte=timezone.now()).delete()

    @_busy_is_retried(default=False)
    def try_acquire_slot(self, limits: EndpointLimits, lease_id: str) -> bool:
        with transaction.atomic():
            self._lock(limits)
            in_flight = LlmRateLease.objects.filter(endpoint_id=limits.endpoint_id, kind=LeaseKind.SLOT).count()
            if in_flight >= limits.max_concurrency:
                return False
            LlmRateLease.objects.create(
                endpoint_id=limits.endpoint_id,
                kind=LeaseKind.SLOT,
                lease_id=lease_id,
                expires_at=timezone.now() + timedelta(seconds=limits.lease_seconds),
            )
            return True

    def release_slot(self, limits: EndpointLimits, lease_id: str) -> None:
        _until_written(lambda: LlmRateLease.objects.filter(lease_id=lease_id).delete())

    @_busy_is_retried(default=POLL_SECONDS)
    def try_reserve_request(self, limits: EndpointLimits, request_id: str, tokens: int) -> float:
        with transaction.atomic():
            self._lock(limits)
            window = LlmRateLease.objects.filter(endpoint_id=limits.endpoint_id, kind=LeaseKind.REQUEST)
            rows = list(window.values_list("tokens", "expires_at"))
            now = timezone.now()
            if _window_is_full(limits, used=[count for count, _ in rows], tokens=tokens):
                return max((min(expiry for _, expiry in rows) - now).total_seconds(), POLL_SECONDS)
            LlmRateLease.objects.create(
                endpoint_id=limits.endpoint_id,
                kind=LeaseKind.REQUEST,
                lease_id=request_id,
                tokens=tokens,
                expires_at=now + timedelta(seconds=WINDOW_SECONDS),
            )
            return 0.0

    def settle_request(self, limits: EndpointLimits, request_id: str, tokens: int) -> None:
        _until_written(lambda: LlmRateLease.objects.filter(lease_id=request_id).update(tokens=tokens))


def _window_is_full(limits: EndpointLimits, *, used: list[int], tokens: int) -> bool:
    if limits.requests_per_minute and len(used) >= limits.requests_per_minute:
        return True
    # A request larger than the whole budget still goes alone into an empty window rather than never.
    return bool(limits.tokens_per_minute and used and sum(used) + tokens > limits.tokens_per_minute)


# Redis scripts run atomically on the server and use the server's clock, so machines with skewed
# clocks still agree. Slots: a sorted set of lease ids scored by expiry. Window: a sorted set of
# request ids scored by time, plus a hash of their token counts.
_ACQUIRE_SLOT = """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]) * 1000, ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) + 60)
return 1
"""
_RESERVE_REQUEST = """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local window_ms = tonumber(ARGV[5]) * 1000
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', KEYS[1])
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local full = rpm > 0 and count >= rpm
if not full and tpm > 0 and count > 0 then
  local used = 0
  for _, value in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(value) end
  full = used + tokens > tpm
end
if full then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(tonumber(oldest[2]) + window_ms - now_ms, 1)
end
redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], tokens)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]) * 2)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]) * 2)
return 0
"""
_SETTLE_REQUEST = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""


class RedisLimiter:
    def __init__(self, client: Any, *, prefix: str = "medsynth:llm") -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE_SLOT)
        self._reserve = client.register_script(_RESERVE_REQUEST)
        self._settle = client.register_script(_SETTLE_REQUEST)

    def _key(self, limits: EndpointLimits, name: str) -> str:
        return f"{self.prefix}:{limits.endpoint_id}:{name}"

    def try_acquire_slot(self, limits: EndpointLimits, lease_id: str) -> bool:
        keys = [self._key(limits, "slots")]
        return bool(self._acquire(keys=keys, args=[limits.max_concurrency, limits.lease_seconds, lease_id]))

    def release_slot(self, limits: EndpointLimits, lease_id: str) -> None:
        self.client.zrem(self._key(limits, "slots"), lease_id)

    def try_reserve_request(self, limits: EndpointLimits, request_id: str, tokens: int) -> float:
        keys = [self._key(limits, "requests"), self._key(limits, "tokens")]
        args = [limits.requests_per_minute or 0, limits.tokens_per_minute or 0, request_id, tokens, WINDOW_SECONDS]
        wait_ms = int(self._reserve(keys=keys, args=args))
        return wait_ms / 1000

    def settle_request(self, limits: EndpointLimits, request_id: str, tokens: int) -> None:
        self._settle(keys=[self._key(limits, "tokens")], args=[request_id, tokens])


def _redis_url() -> str | None:
    url = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


@functools.cache
def _redis_limiter(url: str) -> RedisLimiter:
    import redis

    return RedisLimiter(redis.Redis.from_url(url))


def shared_limiter() -> LimiterBackend:
    """The backend every worker shares: Redis when the broker is Redis, else the database."""
    url = _redis_url()
    return _redis_limiter(url) if url else DatabaseLimiter()


Sleep = Callable[[float], None]


@dataclass
class Reservation:
    limiter: LimiterBackend
    limits: EndpointLimits
    request_id: str

    def settle(self, *, tokens: int) -> None:
        """Replace the estimate with the tokens the call really used."""
        if self.limits.tokens_per_minute:
            self.limiter.settle_request(self.limits, self.request_id, tokens)


def _wait_until(attempt: Callable[[], float], *, sleep: Sleep, max_wait: float, what: str) -> None:
    """Poll `attempt` (0 = done, else a suggested pause) until it succeeds or max_wait has passed."""
    waited = 0.0
    while True:
        suggested = attempt()
        if suggested <= 0:
            return
        if waited >= max_wait:
            raise CapacityTimeout(f"Waited {waited:.0f} s for {what}; the endpoint stayed at its limit.")
        # A little jitter keeps waiting workers from polling in lockstep.
        pause = min(suggested, max_wait - waited, 5.0) + random.uniform(0, POLL_SECONDS)  # noqa: S311
        sleep(pause)
        waited += pause


@contextmanager
def endpoint_capacity(
    *,
    endpoint: LlmEndpoint,
    estimated_tokens: int,
    sleep: Sleep = time.sleep,
    limiter: LimiterBackend | None = None,
    max_wait: float | None = None,
) -> Iterator[Reservation]:
    """Hold one of the endpoint's concurrency slots, with the request counted in the minute window."""
    backend = limiter or shared_limiter()
    limits = EndpointLimits.of(endpoint)
    if max_wait is None:
        max_wait = getattr(settings, "LLM_CAPACITY_MAX_WAIT_SECONDS", DEFAULT_MAX_WAIT_SECONDS)
    lease_id = uuid.uuid4().hex
    _wait_until(
        lambda: 0.0 if backend.try_acquire_slot(limits, lease_id) else POLL_SECONDS,
        sleep=sleep,
        max_wait=max_wait,
        what=f"a free slot on endpoint '{endpoint.name}' (max {limits.max_concurrency} in flight)",
    )
    try:
        request_id = uuid.uuid4().hex
        if limits.requests_per_minute or limits.tokens_per_minute:
            _wait_until(
                lambda: backend.try_reserve_request(limits, request_id, estimated_tokens),
                sleep=sleep,
                max_wait=max_wait,
                what=f"room in the per-minute limits of endpoint '{endpoint.name}'",
            )
        yield Reservation(limiter=backend, limits=limits, request_id=request_id)
    finally:
        backend.release_slot(limits, lease_id)
