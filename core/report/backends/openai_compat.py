"""Any OpenAI-compatible chat-completions server (vLLM, TGI) serving MedGemma.

Images travel as base64 PNG data URIs; greedy decoding (temperature 0). Connection
errors, timeouts, 429 and 5xx are retried a bounded number of times; anything else,
or running out of retries, raises :class:`~core.errors.ModelUnavailable`. Standard
library only, so the base install can use it.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

from core.errors import ModelUnavailable
from core.jsonable import JSONObject, JSONValue
from core.report.backends import Generation, GenerationRequest
from core.report.image import png_bytes

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def chat_payload(request: GenerationRequest, model: str) -> JSONObject:
    """The chat-completions request body: images first, then the prompt."""
    content: list[JSONValue] = []
    for im in request.images:
        uri = "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode("ascii")
        content.append({"type": "image_url", "image_url": {"url": uri}})
    content.append({"type": "text", "text": request.prompt})
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": request.max_new_tokens,
        "temperature": 0.0,
        "top_p": 1.0,
        "n": 1,
        "stream": False,
    }


class OpenAIBackend:
    """Chat completions over HTTP, with timeouts and bounded retries."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 120.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s

    def _post(self, body: bytes) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    data: dict[str, Any] = json.loads(resp.read().decode("utf-8"))
                    return data
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                last = f"HTTP {e.code} from {url}: {detail}"
                if e.code not in RETRY_STATUS:
                    raise ModelUnavailable(f"model server refused the request: {last}") from e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                last = f"cannot reach {url}: {reason}"
            except json.JSONDecodeError as e:
                raise ModelUnavailable(f"model server at {url} sent invalid JSON: {e}") from e
        raise ModelUnavailable(f"{last} (after {self.max_retries + 1} attempt(s))")

    def generate(self, request: GenerationRequest) -> Generation:
        """Send the prompt and images; return the first choice's message."""
        body = json.dumps(chat_payload(request, self.model)).encode("utf-8")
        t0 = time.perf_counter()
        data = self._post(body)
        elapsed = time.perf_counter() - t0
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError) as e:
            raise ModelUnavailable(
                f"model server answered without a message: {str(data)[:200]}"
            ) from e
        if isinstance(text, list):  # some servers return content parts
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        return Generation(
            text=str(text or "").strip(),
            backend=self.name,
            model=str(data.get("model") or self.model),
            written_by_language_model=True,
            decoding={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": request.max_new_tokens},
            timings={"generate_s": round(elapsed, 3)},
            extra={
                "base_url": self.base_url,
                "usage": data.get("usage") or {},
                "finish_reason": choice.get("finish_reason"),
            },
        )
