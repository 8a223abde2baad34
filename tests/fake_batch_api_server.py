"""A local OpenAI-compatible Batch API server for tests: /v1/files and /v1/batches beside
the chat completions of tests/fake_llm_server.py (whose answers it gives on every line), with
per-line failures and expiry on request.

    with fake_batch_api_server() as server:
        server.base_url                 # http://127.0.0.1:PORT/v1
        server.hold = True              # batches stay in_progress until released
        server.line_failures["case1-note_writer-1"] = 1   # that line fails once (HTTP 500 in the error file)
        server.expire_next_after = 2    # the next batch expires after its first 2 lines
        server.invalid_json_lines.add("case1-note_writer-1")      # that line's reply is cut short
        server.created                  # every batch created, with its input lines

Routes: POST /v1/files (multipart, purpose=batch), GET /v1/files/{id}/content,
POST /v1/batches, GET /v1/batches (the list, for a search by metadata),
GET /v1/batches/{id}, POST /v1/batches/{id}/cancel, and POST /v1/chat/completions.
A batch is processed when it is first retrieved (unless `hold`): its output file holds
the lines that succeeded, its error file the lines that failed or expired, as OpenAI
writes them. Standard library only, like fake_llm_server.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import ThreadingHTTPServer
from typing import Any

from tests.fake_llm_server import (
    FakeLlmServer,
    ServedRequest,
    _Handler,
    agent_of_messages,
    chat_completion,
    default_output,
    judge_output,
    requested_variable_keys,
)


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    metadata: dict[str, str]
    lines: list[dict[str, Any]]
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    created_at: int = field(default_factory=lambda: int(time.time()))

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "request_counts": {"total": len(self.lines), "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
        }

    @property
    def custom_ids(self) -> list[str]:
        return [line["custom_id"] for line in self.lines]


@dataclass
class FakeBatchApiServer(FakeLlmServer):
    """What a test reads and tunes while the server runs."""

    hold: bool = False
    # custom_id -> how many more times its line fails (HTTP 500 in the error file).
    line_failures: dict[str, int] = field(default_factory=dict)
    # The next batch processed completes only this many lines, then expires.
    expire_next_after: int | None = None
    # custom_ids whose line's reply is cut short (invalid JSON in a 200 completion).
    invalid_json_lines: set[str] = field(default_factory=set)
    # How many more scenario judge answers reject the scenario.
    judge_rejections: int = 0
    # How many more batch creations are refused (HTTP 400).
    reject_batches: int = 0
    # Cached prompt tokens reported in every line's usage.
    cached_tokens: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    created: list[FakeBatch] = field(default_factory=list)
    uploads: int = 0
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-{next(self._ids)}"

    def line_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        agent = agent_of_messages(body.get("messages") or [])
        output = default_output(agent, variable_keys=requested_variable_keys(body))
        with self._lock:
            if agent == "scenario_judge" and self.judge_rejections > 0:
                self.judge_rejections -= 1
                output = judge_output(approved=False, reason="The outcome does not fit the code.")
        content = json.dumps(output)
        completion = chat_completion(model=str(body.get("model") or self.model), content=content)
        completion["usage"]["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return completion

    def process(self, batch: FakeBatch) -> None:
        """Answer every line: the output file gets the replies, the error file the failures."""
        expire_after, self.expire_next_after = self.expire_next_after, None
        output, errors = [], []
        for index, line in enumerate(batch.lines):
            custom_id, request_id = line["custom_id"], self.new_id("req")
            row: dict[str, Any] = {"id": self.new_id("batch_req"), "custom_id": custom_id, "error": None}
            if expire_after is not None and index >= expire_after:
                row["response"] = None
                row["error"] = {"code": "batch_expired", "message": "Not executed within the completion window."}
                errors.append(row)
            elif self.line_failures.get(custom_id, 0) > 0:
                self.line_failures[custom_id] -= 1
                body = {"error": {"message": "The server had an error", "type": "server_error"}}
                row["response"] = {"status_code": 500, "request_id": request_id, "body": body}
                errors.append(row)
            else:
                body = self.line_completion(line["body"])
                if custom_id in self.invalid_json_lines:
                    message = body["choices"][0]["message"]
                    message["content"] = message["content"][:-3]
                row["response"] = {"status_code": 200, "request_id": request_id, "body": body}
                output.append(row)
        batch.completed, batch.failed = len(output), len(errors)
        batch.output_file_id = self._store_lines(output)
        batch.error_file_id = self._store_lines(errors)
        batch.status = "expired" if expire_after is not None else "completed"

    def _store_lines(self, rows: list[dict[str, Any]]) -> str | None:
        if not rows:
            return None
        file_id = self.new_id("file")
        self.files[file_id] = "".join(json.dumps(row) + "\n" for row in rows).encode()
        return file_id


def _multipart_file(content_type: str, body: bytes) -> tuple[str, bytes]:
    """(filename, content) of the `file` part of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.iter_parts():  # type: ignore[attr-defined]
        if part.get_param("name", header="content-disposition") == "file":
            return str(part.get_filename() or "input.jsonl"), bytes(part.get_payload(decode=True) or b"")
    raise ValueError("no file part in the upload")


class _BatchHandler(_Handler):
    fake: FakeBatchApiServer  # type: ignore[assignment]

    def _path(self) -> list[str]:
        return self.path.split("?")[0].strip("/").split("/")

    def do_GET(self) -> None:
        path = self._path()
        if path[-2:] == ["v1", "batches"] or path == ["v1", "batches"]:
            data = [batch.as_json() for batch in reversed(self.fake.created)]
            self._send_json(200, {"object": "list", "data": data, "has_more": False})
        elif len(path) == 3 and path[:2] == ["v1", "batches"]:
            self._retrieve(path[2])
        elif len(path) == 4 and path[1] == "files" and path[3] == "content":
            content = self.fake.files.get(path[2])
            if content is None:
                self._send_json(404, {"error": {"message": f"no file {path[2]}"}})
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        else:
            super().do_GET()

    def do_POST(self) -> None:
        path = self._path()
        if path == ["v1", "files"]:
            self._upload()
        elif path == ["v1", "batches"]:
            self._create()
        elif len(path) == 4 and path[1] == "batches" and path[3] == "cancel":
            batch = self.fake.batches[path[2]]
            self._read_body()
            if batch.status in ("completed", "expired", "failed", "cancelled"):
                message = f"Cannot cancel a batch with status {batch.status}."
                self._send_json(400, {"error": {"message": message, "type": "invalid_request_error"}})
                return
            batch.status = "cancelling"
            self._send_json(200, batch.as_json())
        elif path[-2:] == ["chat", "completions"]:
            self._chat()
        else:
            super().do_POST()

    def _chat(self) -> None:
        """A realtime request gets the answer a batch line would (so both modes write the same)."""
        body = json.loads(self._read_body() or b"{}")
        agent = agent_of_messages(body.get("messages") or [])
        served = ServedRequest(request_id=self.fake.new_id("req"), agent=agent, fault="", started=time.time())
        self.fake.record(served)
        self._send_json(200, self.fake.line_completion(body), headers={"x-request-id": served.request_id})
        served.finished = time.time()

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _upload(self) -> None:
        name, content = _multipart_file(self.headers.get("Content-Type", ""), self._read_body())
        file_id = self.fake.new_id("file")
        self.fake.files[file_id] = content
        self.fake.uploads += 1
        self._send_json(
            200,
            {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": name,
                "purpose": "batch",
                "status": "processed",
            },
        )

    def _create(self) -> None:
        body = json.loads(self._read_body() or b"{}")
        if self.fake.reject_batches > 0:
            self.fake.reject_batches -= 1
            self._send_json(400, {"error": {"message": "Invalid input file.", "type": "invalid_request_error"}})
            return
        content = self.fake.files[body["input_file_id"]].decode()
        lines = [json.loads(row) for row in content.splitlines() if row.strip()]
        batch = FakeBatch(
            id=self.fake.new_id("batch"),
            input_file_id=body["input_file_id"],
            metadata=body.get("metadata") or {},
            lines=lines,
        )
        self.fake.batches[batch.id] = batch
        self.fake.created.append(batch)
        self._send_json(200, batch.as_json())

    def _retrieve(self, batch_id: str) -> None:
        batch = self.fake.batches.get(batch_id)
        if batch is None:
            self._send_json(404, {"error": {"message": f"no batch {batch_id}"}})
            return
        if batch.status == "cancelling":
            batch.status = "cancelled"
        elif batch.status in ("validating", "in_progress") and not self.fake.hold:
            self.fake.process(batch)
        elif batch.status == "validating":
            batch.status = "in_progress"
        self._send_json(200, batch.as_json())


@contextmanager
def fake_batch_api_server(*, host: str = "127.0.0.1", **options: Any) -> Iterator[FakeBatchApiServer]:
    """Serve on a free port in a background thread for the length of the block."""
    handler = type("BatchHandler", (_BatchHandler,), {})
    httpd = ThreadingHTTPServer((host, 0), handler)
    httpd.daemon_threads = True
    fake = FakeBatchApiServer(host=host, port=int(httpd.server_address[1]), **options)
    handler.fake = fake
    thread = threading.Thread(target=httpd.serve_forever, name="fake-batch-api-server", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
