"""Who writes the narrative: a model through transformers, an OpenAI-compatible server,
or the deterministic template writer.

Every backend receives text that has already passed the leakage gate, and returns a
:class:`Generation` with the text and what is needed for provenance. A backend that
cannot reach or load its model raises :class:`~core.errors.ModelUnavailable`; nothing
falls back to the template silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from core.config import Settings, get_settings
from core.errors import BadOption
from core.jsonable import JSONObject

BACKENDS = ("template", "transformers", "openai")


@dataclass
class GenerationRequest:
    """What a backend gets: the gated prompt, the images, and the features it was built from."""

    prompt: str
    images: list[Image.Image]
    features: JSONObject
    max_new_tokens: int = 1024


@dataclass
class Generation:
    """A backend's narrative and its provenance."""

    text: str
    backend: str
    model: str | None
    written_by_language_model: bool
    revision: str | None = None
    decoding: JSONObject = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    extra: JSONObject = field(default_factory=dict)


class Backend(Protocol):
    """Anything that turns a :class:`GenerationRequest` into a :class:`Generation`."""

    name: str

    def generate(self, request: GenerationRequest) -> Generation: ...


def get_backend(name: str, model: str | None = None, settings: Settings | None = None) -> Backend:
    """The backend called ``name``; ``model`` overrides the model id (or served model name)."""
    settings = settings or get_settings()
    if name == "template":
        from core.report.backends.template import TemplateBackend

        return TemplateBackend()
    if name == "transformers":
        from core.report.backends.hf import TransformersBackend

        return TransformersBackend(
            model or settings.model_id,
            revision=settings.model_revision,
            allow_download=settings.model_allow_download is not False,
        )
    if name == "openai":
        from core.report.backends.openai_compat import OpenAIBackend

        return OpenAIBackend(
            base_url=settings.openai_base_url,
            model=model or settings.openai_model,
            api_key=settings.openai_api_key,
            timeout_s=settings.openai_timeout_s,
            max_retries=settings.openai_max_retries,
        )
    raise BadOption(f"unknown report backend {name!r}; choose one of {', '.join(BACKENDS)}")
