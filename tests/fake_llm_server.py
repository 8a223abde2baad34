"""A local OpenAI-compatible test server: answers chat.completions with a schema-valid JSON
reply for each of the six agents, and can inject faults.

Standard library only, so anything can run it: the chaos and Ctrl-C tests start it in a
thread, the CI smoke test of the production configuration runs it beside a virtualenv that
has nothing but requirements.txt. No Django here; tests/generation/pipeline_fakes.py builds
its replayed answers from the same shapes.

    with fake_llm_server(fault_rate=0.2, seed=7) as server:
        server.base_url          # http://127.0.0.1:PORT/v1
        server.requests          # one ServedRequest per chat request: agent, fault, request id, times
        server.stats()           # requests served, faults, peak concurrency (also GET /stats)

`python tests/fake_llm_server.py --latency 0.5 --pad-bytes 2000 --fault-rate 0.01` serves the same
from the command line, for benchmarks (scripts/bench).

With `like_a_model=True` the server answers as a model that follows its prompt, for cost
tests: its reply takes the shape and length of the first worked example in the prompt (a
polisher returns the note or dialogue it was given; the judge writes a sentence per
criterion and rejects a `judge_reject_rate` share of scenarios, evenly spread), and the usage it reports
follows the real sizes: prompt tokens are the characters of the messages and the response
format over 4, completion tokens those of the reply over 4, and a system message it has seen
before is reported as cached prompt tokens (prefix caching). Otherwise every reply reports a
fixed usage (200 in, 80 out).

Faults, drawn per chat request with probability `fault_rate` (evenly among FAULTS):
429 with Retry-After, 500, a timeout (no answer until the client has given up), invalid
JSON, and a truncated reply (finish_reason=length). Every answer the client can read carries
an x-request-id, which the client records on its AgentCall row.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SYSTEM_MARKERS = {
    "scenario_provider": "You are the Scenario Provider",
    "scenario_judge": "You are the Scenario Judge",
    "note_writer": "You are the Note Writer",
    "note_polisher": "You are the Note Polisher",
    "dialogue_generator": "You are the Dialogue Generator",
    "dialogue_polisher": "You are the Dialogue Polisher",
}
RATE_LIMITED, SERVER_ERROR, TIMEOUT, INVALID_JSON, TRUNCATED = "429", "500", "timeout", "invalid_json", "truncated"
FAULTS = (RATE_LIMITED, SERVER_ERROR, TIMEOUT, INVALID_JSON, TRUNCATED)


def agent_of_messages(messages: list[dict[str, Any]]) -> str:
    """Which agent sent a request, read from its instructions (the local demo model gets them
    in the first user turn rather than a system message)."""
    opening = "\n".join(str(message.get("content") or "")[:200] for message in messages[:2])
    for agent, marker in SYSTEM_MARKERS.items():
        if marker in opening:
            return agent
    raise ValueError(f"no agent recognised in the instructions: {opening[:200]!r}")


def scenario_output(
    *, variable_keys: list[str], theme: str = "metformin", role: str = "**Family Medicine Physician**"
) -> dict[str, Any]:
    return {
        "planning": "A retired teacher with new diabetes; focus on cost barriers.",
        "role": role,
        "variables": {key: f"{theme} detail for {key.replace('_', ' ')}" for key in variable_keys},
    }


def judge_output(*, approved: bool = True, reason: str = "Consistent with the code.") -> dict[str, Any]:
    verdict = {"reason": reason, "passed": approved}
    return {"medical_correctness": verdict, "plausibility": verdict, "diversity": verdict, "approved": approved}


def note_output(*, marker: str = "raw", lead: str = "planning") -> dict[str, Any]:
    return {
        lead: "Plan the note around the scenario." if lead == "planning" else "Moved HbA1c to objective.",
        "chief_complaint": "Thirst.",
        "history_of_present_illness": "Three months of thirst.",
        "review_of_systems": "No weight loss.",
        "subjective": f"Reports polyuria ({marker} note).",
        "objective": "HbA1c 8.1%.",
        "assessment": "Type 2 diabetes.",
        "plan": f"Metformin 500 mg twice daily ({marker} plan).",
    }


def dialogue_output(*, marker: str = "raw", lead: str = "planning") -> dict[str, Any]:
    # Six turns of a few words (the schema's least), speakers as a plain-JSON model writes them.
    turns = [
        {"speaker": "Doctor", "text": f"What brings you in? ({marker})"},
        {"speaker": "**Patient**", "text": "I'm thirsty all the time."},
        {"speaker": "Dr.", "text": "How long has that been going on?"},
        {"speaker": "patient", "text": "About three months now, and I pass water a lot."},
        {"speaker": "doctor", "text": "Your HbA1c is 8.1%, which means type 2 diabetes."},
        {"speaker": "patient", "text": "What can we do about it?"},
    ]
    if lead == "planning":
        return {"planning": "Open with the complaint.", "turns": turns}
    return {"missing_facts": [], "turns": turns}


# Words for scenarios that differ from one case to the next (the judge rejects near duplicates).
VOCABULARY = [f"{stem}{n}" for stem in ("fever", "cough", "rash", "ache", "clinic", "ward") for n in range(40)]


def varied_scenario_output(*, variable_keys: list[str], pick: random.Random) -> dict[str, Any]:
    scenario = scenario_output(variable_keys=variable_keys)
    scenario["variables"] = {key: " ".join(pick.sample(VOCABULARY, 6)) for key in variable_keys}
    return scenario


def default_output(agent: str, *, variable_keys: list[str], pick: random.Random | None = None) -> dict[str, Any]:
    """Each agent's usual, valid answer; with `pick`, scenarios vary from one call to the next."""
    answers: dict[str, Callable[[], dict[str, Any]]] = {
        "scenario_provider": lambda: (
            varied_scenario_output(variable_keys=variable_keys, pick=pick)
            if pick
            else scenario_output(variable_keys=variable_keys)
        ),
        "scenario_judge": judge_output,
        "note_writer": note_output,
        "note_polisher": lambda: note_output(marker="polished", lead="changes"),
        "dialogue_generator": dialogue_output,
        "dialogue_polisher": lambda: dialogue_output(marker="polished", lead="missing_facts"),
    }
    return answers[agent]()


def requested_variable_keys(body: dict[str, Any]) -> list[str]:
    """The scenario variables the request's response_format asks for (json_schema or
    llama-cpp-python's json_object + schema)."""
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema") or {}
    variables = (schema.get("properties") or {}).get("variables") or {}
    reference = variables.get("$ref", "")
    if reference.startswith("#/$defs/"):
        variables = schema.get("$defs", {}).get(reference.removeprefix("#/$defs/"), {})
    return list((variables.get("properties") or {}).keys())


CHARS_PER_TOKEN = 4
FIXED_USAGE = {"prompt_tokens": 200, "completion_tokens": 80, "total_tokens": 280}
_WORKED_EXAMPLE = re.compile(r"Worked example 1\.\nInput:\n.*?\nOutput:\n(\{[^\n]*\})", re.S)
_BLOCK_AFTER = {
    "note_polisher": "The note to polish:\n",
    "dialogue_polisher": "The dialogue to polish:\n",
}
_SPOKEN_TURN = re.compile(r"^\[(?P<speaker>[^\]]+)\]:\s*(?P<text>.+)$")
JUDGE_REASON = (
    "The scenario fits the code: the history, findings and plan agree with the diagnosis, "
    "and the patient differs from the approved ones."
)
JUDGE_REJECTION = "The medication plan does not match the stated kidney function; revise the dose."


WIDE_VOCABULARY = [f"{stem}{n}" for stem in ("fever", "cough", "rash", "ache", "ward", "dose") for n in range(300)]


def _words_of_length(length: int, pick: random.Random) -> str:
    words: list[str] = []
    while sum(len(word) + 1 for word in words) < length:
        words.append(pick.choice(WIDE_VOCABULARY))
    return " ".join(words)


def measured_usage(*, body: dict[str, Any], content: str, cached_prefix: str) -> dict[str, Any]:
    """Usage as a provider counts it, at about 4 characters a token."""
    messages = body.get("messages") or []
    prompt_chars = sum(len(str(message.get("content") or "")) for message in messages)
    prompt_chars += len(json.dumps(body.get("response_format") or {}))
    prompt, completion = prompt_chars // CHARS_PER_TOKEN, len(content) // CHARS_PER_TOKEN
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": len(cached_prefix) // CHARS_PER_TOKEN},
    }


def _user_text(messages: list[dict[str, Any]]) -> str:
    return str(messages[-1].get("content") or "") if messages else ""


def _block(text: str, heading: str) -> str:
    """The text under `heading` in a prompt, up to the prompt's next part."""
    after = text.split(heading, 1)[1] if heading in text else ""
    for next_part in ("\nAn automatic check", "\nReturn JSON"):
        after = after.split(next_part, 1)[0]
    return after.strip()


def _polished_note(text: str) -> dict[str, Any]:
    note = note_output(marker="polished", lead="changes")
    return {**note, "subjective": text or note["subjective"]}


def _polished_dialogue(text: str) -> dict[str, Any]:
    turns = [
        {"speaker": match["speaker"], "text": match["text"]}
        for line in text.splitlines()
        if (match := _SPOKEN_TURN.match(line.strip()))
    ]
    answer = dialogue_output(marker="polished", lead="missing_facts")
    return {**answer, "turns": turns if len(turns) >= len(answer["turns"]) else answer["turns"]}


def model_like_output(
    agent: str, *, body: dict[str, Any], pick: random.Random, rejected: bool = False
) -> dict[str, Any]:
    """An answer the size a model following the prompt would write (see the module's doc)."""
    messages = body.get("messages") or []
    keys = requested_variable_keys(body)
    answer = default_output(agent, variable_keys=keys, pick=pick)
    if agent == "scenario_judge":
        return judge_output(approved=not rejected, reason=JUDGE_REJECTION if rejected else JUDGE_REASON)
    if agent in _BLOCK_AFTER:
        given = _block(_user_text(messages), _BLOCK_AFTER[agent])
        return _polished_note(given) if agent == "note_polisher" else _polished_dialogue(given)
    system = "\n".join(str(message.get("content") or "") for message in messages[:1])
    found = _WORKED_EXAMPLE.search(system)
    if not found:
        return answer
    example = json.loads(found.group(1))
    if agent == "scenario_provider":
        lengths = [len(str(value)) for value in (example.get("variables") or {}).values()] or [40]
        # As long as the example's values, in words of its own: a new scenario, not a near duplicate.
        answer["variables"] = {key: _words_of_length(lengths[n % len(lengths)], pick) for n, key in enumerate(keys)}
        answer["role"] = example.get("role") or answer["role"]
        return answer
    return {**answer, **{key: value for key, value in example.items() if key in answer}}


def with_distinct_words(agent: str, output: dict[str, Any], pick: random.Random) -> dict[str, Any]:
    """The answer with words of its own in every note section and dialogue turn, so the notes and
    dialogues of different cases are not near duplicates of each other, as a model's are not."""
    if agent in ("note_writer", "note_polisher"):
        return {key: f"{value} {' '.join(pick.sample(WIDE_VOCABULARY, 8))}" for key, value in output.items()}
    if agent in ("dialogue_generator", "dialogue_polisher"):
        turns = [
            {**turn, "text": f"{turn['text']} {' '.join(pick.sample(WIDE_VOCABULARY, 6))}"} for turn in output["turns"]
        ]
        return {**output, "turns": turns}
    return output


def chat_completion(
    *, model: str, content: str, finish_reason: str = "stop", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": usage or FIXED_USAGE,
    }


@dataclass
class ServedRequest:
    request_id: str
    agent: str
    fault: str
    started: float  # time.time()
    finished: float = 0.0


@dataclass
class FakeLlmServer:
    """What a test can read and tune while the server runs."""

    host: str
    port: int
    model: str = "fake-model"
    fault_rate: float = 0.0
    # The client's timeout: a TIMEOUT fault answers only after it (plus a margin).
    client_timeout: float = 2.0
    reply_delay: tuple[float, float] = (0.0, 0.0)
    seed: int | None = None
    # Answer like a model following its prompt, with usage measured from the sizes (cost tests).
    like_a_model: bool = False
    judge_reject_rate: float = 0.0
    # Blank bytes after each reply's JSON (still valid JSON): a larger answer to read and parse.
    pad_bytes: int = 0
    # Notes and dialogues with words of their own per answer (see with_distinct_words).
    distinct_texts: bool = False
    requests: list[ServedRequest] = field(default_factory=list)
    # Chat requests being answered now, and the most there ever were at once.
    in_flight: int = 0
    peak_in_flight: int = 0
    # System messages already served: a provider with prefix caching reports them as cached.
    _seen_prefixes: set[str] = field(default_factory=set)
    _verdicts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._random.seed(self.seed)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def draw(self) -> tuple[str, float, random.Random]:
        """The fault for the next request (empty: a good answer), its delay, and the draws for its content."""
        with self._lock:
            fault = self._random.choice(FAULTS) if self._random.random() < self.fault_rate else ""
            return fault, self._random.uniform(*self.reply_delay), random.Random(self._random.random())

    def cached_prefix(self, body: dict[str, Any]) -> str:
        """The first message, when it is a system message served before ("" the first time)."""
        messages = body.get("messages") or []
        first = messages[0] if messages else {}
        if first.get("role") != "system":
            return ""
        text = str(first.get("content") or "")
        with self._lock:
            seen = text in self._seen_prefixes
            self._seen_prefixes.add(text)
        return text if seen else ""

    def judge_rejects_next(self) -> bool:
        """Whether the judge rejects this scenario: exactly `judge_reject_rate` of them, spread evenly."""
        with self._lock:
            self._verdicts += 1
            made = self._verdicts
        return int(made * self.judge_reject_rate) > int((made - 1) * self.judge_reject_rate)

    def record(self, served: ServedRequest) -> None:
        with self._lock:
            self.requests.append(served)

    def served(self) -> list[ServedRequest]:
        with self._lock:
            return list(self.requests)

    def answering(self, change: int) -> None:
        """A chat request starts (+1) or ends (-1) being answered."""
        with self._lock:
            self.in_flight += change
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def stats(self) -> dict[str, int]:
        """What GET /stats answers: requests served (and how many with a fault), peak concurrency."""
        with self._lock:
            faults = sum(1 for served in self.requests if served.fault)
            return {"served": len(self.requests), "faults": faults, "peak_in_flight": self.peak_in_flight}


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeLLM/1.0"
    fake: FakeLlmServer  # set on the subclass made for each server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: the tests read `requests`, not the log

    def _send_json(self, status: int, payload: Any, *, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/stats":
            self._send_json(200, self.fake.stats())
        elif self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": self.fake.model, "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        agent = agent_of_messages(body.get("messages") or [])
        fault, delay, pick = self.fake.draw()
        served = ServedRequest(request_id=f"req-{uuid.uuid4().hex}", agent=agent, fault=fault, started=time.time())
        self.fake.record(served)
        self.fake.answering(+1)
        try:
            self._answer(body, agent=agent, fault=fault, delay=delay, pick=pick, request_id=served.request_id)
        except OSError:
            pass  # the client gave up (a timeout fault) or its worker was killed
        finally:
            served.finished = time.time()
            self.fake.answering(-1)

    def _answer(
        self, body: dict[str, Any], *, agent: str, fault: str, delay: float, pick: random.Random, request_id: str
    ) -> None:
        headers = {"x-request-id": request_id}
        if fault == TIMEOUT:
            time.sleep(self.fake.client_timeout + 1.0)
            self.close_connection = True
            return
        time.sleep(delay)
        if fault == RATE_LIMITED:
            self._send_json(
                429,
                {"error": {"message": "Rate limit reached", "type": "requests"}},
                headers={**headers, "Retry-After": "1"},
            )
            return
        if fault == SERVER_ERROR:
            self._send_json(
                500, {"error": {"message": "The server had an error", "type": "server_error"}}, headers=headers
            )
            return
        fake = self.fake
        if fake.like_a_model:
            rejected = agent == "scenario_judge" and fake.judge_rejects_next()
            output = model_like_output(agent, body=body, pick=pick, rejected=rejected)
        else:
            output = default_output(agent, variable_keys=requested_variable_keys(body), pick=pick)
            if fake.distinct_texts:
                output = with_distinct_words(agent, output, pick)
        content = json.dumps(output) + " " * fake.pad_bytes
        if fake.like_a_model and not fault:
            usage = measured_usage(body=body, content=content, cached_prefix=fake.cached_prefix(body))
            self._send_json(200, chat_completion(model=fake.model, content=content, usage=usage), headers=headers)
            return
        if fault == INVALID_JSON:
            self._send_json(200, chat_completion(model=self.fake.model, content=content[:-3] + "'}"), headers=headers)
        elif fault == TRUNCATED:
            completion = chat_completion(
                model=self.fake.model, content=content[: len(content) // 2], finish_reason="length"
            )
            self._send_json(200, completion, headers=headers)
        else:
            self._send_json(200, chat_completion(model=self.fake.model, content=content), headers=headers)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a benchmark opens dozens of connections at once (the default backlog is 5)


@contextmanager
def fake_llm_server(*, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Iterator[FakeLlmServer]:
    """Serve on a free port (or `port`) in a background thread for the length of the block."""
    handler = type("Handler", (_Handler,), {})
    httpd = _Server((host, port), handler)
    httpd.daemon_threads = True
    fake = FakeLlmServer(host=host, port=int(httpd.server_address[1]), **options)
    handler.fake = fake
    thread = threading.Thread(target=httpd.serve_forever, name="fake-llm-server", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--pad-bytes", type=int, default=0, help="blank bytes after each reply's JSON")
    parser.add_argument("--model", default="fake-model")
    parser.add_argument(
        "--distinct-texts", action="store_true", help="notes and dialogues that differ from one answer to the next"
    )
    args = parser.parse_args()
    with fake_llm_server(
        port=args.port,
        fault_rate=args.fault_rate,
        seed=args.seed,
        reply_delay=(args.latency, args.latency),
        pad_bytes=args.pad_bytes,
        model=args.model,
        distinct_texts=args.distinct_texts,
    ) as server:
        print(server.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
