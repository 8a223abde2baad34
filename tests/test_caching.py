"""generation/caching.py: a read kept per process for its setting's number of seconds."""

from __future__ import annotations

import pytest

import generation.caching as caching
from generation.caching import kept_for


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def counted_read():
    calls: list[tuple[int, str]] = []

    @kept_for("TEST_KEEP_SECONDS")
    def read(number: int, *, word: str = "") -> str:
        calls.append((number, word))
        return f"{number}{word}:{len(calls)}"

    return read, calls


def test_a_read_is_kept_for_the_settings_seconds_per_argument_list(settings, clock, counted_read):
    settings.TEST_KEEP_SECONDS = 30
    read, calls = counted_read
    assert read(1) == "1:1"
    assert read(1, word="a") == "1a:2"  # other arguments: read
    clock[0] += 29
    assert read(1) == "1:1"  # kept
    assert read(1, word="a") == "1a:2"
    clock[0] += 1
    assert read(1) == "1:3"  # 30 s old: read again
    assert calls == [(1, ""), (1, "a"), (1, "")]


def test_zero_seconds_reads_every_time_and_keeps_nothing(settings, clock, counted_read):
    settings.TEST_KEEP_SECONDS = 0
    read, calls = counted_read
    assert [read(2), read(2)] == ["2:1", "2:2"]
    settings.TEST_KEEP_SECONDS = 60  # nothing was kept while it was 0
    assert read(2) == "2:3"
    assert read(2) == "2:3"


def test_forget_makes_the_next_call_read(settings, clock, counted_read):
    settings.TEST_KEEP_SECONDS = 60
    read, calls = counted_read
    read(3)
    read.forget()
    assert read(3) == "3:2"
    assert read.__name__ == "read"
