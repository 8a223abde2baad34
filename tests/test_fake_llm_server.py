"""The benchmark's view of the local test server: padded answers stay valid JSON, and it counts
the requests it served and the most it answered at once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.fake_llm_server import SYSTEM_MARKERS, fake_llm_server


def _ask(base_url: str) -> dict:
    body = {"model": "fake-model", "messages": [{"role": "system", "content": SYSTEM_MARKERS["note_writer"]}]}
    response = httpx.post(f"{base_url}/chat/completions", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def test_the_server_reports_requests_served_and_peak_concurrency_and_pads_its_answers():
    with fake_llm_server(reply_delay=(0.3, 0.3), pad_bytes=5000) as server:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: _ask(server.base_url), range(3)))
        _ask(server.base_url)  # alone, after the three
        stats = httpx.get(f"http://{server.host}:{server.port}/stats").json()
    content = answers[0]["choices"][0]["message"]["content"]
    assert len(content) > 5000
    assert "subjective" in json.loads(content)
    assert stats == {"served": 4, "faults": 0, "peak_in_flight": 3}
