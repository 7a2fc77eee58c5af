"""Shared model fixtures: a tiny random-weight Gemma 3 (built, never downloaded) and an
OpenAI-compatible server on loopback that answers with that model's real generation.

torch and transformers are imported only inside the fixtures, so tests that do not use
them still run without the model extra.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a tiny random-weight Gemma 3 folder; skips without the model extra."""
    torch = pytest.importorskip("torch", reason="the model extra (torch) is not installed")
    pytest.importorskip("transformers", reason="the model extra (transformers) is not installed")
    from tests.fixtures.tiny_model import build_tiny_gemma3

    torch.set_num_threads(1)
    return str(build_tiny_gemma3(tmp_path_factory.mktemp("tiny-gemma3")))


class ChatHandler(BaseHTTPRequestHandler):
    """``/v1/chat/completions`` answered by the tiny model; optional scripted failures."""

    model_path: ClassVar[str] = ""
    fail_first: ClassVar[list[int]] = []  # status codes to answer before succeeding
    requests_seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        from PIL import Image

        from core.report.backends import GenerationRequest
        from core.report.backends.hf import TransformersBackend

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests_seen.append(body)
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": "not found"})
            return
        if type(self).fail_first:
            self._send(type(self).fail_first.pop(0), {"error": "scripted failure"})
            return
        images, text = [], ""
        for part in body["messages"][0]["content"]:
            if part["type"] == "image_url":
                b64 = part["image_url"]["url"].split(",", 1)[1]
                images.append(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))
            elif part["type"] == "text":
                text += part["text"]
        gen = TransformersBackend(self.model_path).generate(
            GenerationRequest(text, images, {}, int(body["max_tokens"]))
        )
        self._send(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "length",
                        "message": {"role": "assistant", "content": gen.text},
                    }
                ],
                "usage": {
                    "prompt_tokens": gen.extra["input_tokens"],
                    "completion_tokens": gen.extra["output_tokens"],
                },
            },
        )


@pytest.fixture
def server(tiny_model: str) -> Iterator[tuple[str, type[ChatHandler]]]:
    """(base URL ending in ``/v1``, handler class with ``requests_seen`` and ``fail_first``)."""
    handler = type(
        "Handler", (ChatHandler,), {"model_path": tiny_model, "fail_first": [], "requests_seen": []}
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
