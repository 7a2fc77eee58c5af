"""MedGemma (or any Gemma 3 vision-language model) through ``transformers``.

``AutoProcessor`` + ``AutoModelForImageTextToText`` with the processor's chat template;
bf16 on CUDA, fp32 on CPU; greedy decoding. Each (model, revision) is loaded once per
process and reused. torch and transformers are imported here only.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from core.errors import ModelUnavailable
from core.report.backends import Generation, GenerationRequest

_CACHE: dict[tuple[str, str | None], tuple[Any, Any, str, str]] = {}
_LOCK = threading.Lock()


def _import() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ModelUnavailable(
            f"the transformers backend needs torch and transformers ({e.name} is not installed); "
            "install the model extra: pip install 'medgemma-spatial[model]'"
        ) from e
    return torch, transformers


HUB_PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """Whether the environment forbids reaching the Hugging Face Hub."""
    return any(
        os.environ.get(k, "").strip().lower() in _TRUE
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _cached(model_id: str, revision: str | None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        hit = try_to_load_from_cache(model_id, "config.json", revision=revision)
    except Exception:  # an invalid repo id: not cached
        return False
    return isinstance(hit, str)


def _hub_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        req = urllib.request.Request(f"{endpoint}/api/models?limit=1", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True  # the hub answered
    except (OSError, ValueError):
        return False


def check_weights_reachable(model_id: str, revision: str | None = None) -> bool:
    """Know within seconds whether a hub model can be loaded; True when it must load from cache.

    Cached weights load with ``local_files_only`` (no network round trips). Weights that
    are not cached raise :class:`ModelUnavailable` at once when the hub is offline
    (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``) or does not answer within
    ``HUB_PROBE_TIMEOUT_S``, instead of minutes of download retries.
    """
    if _cached(model_id, revision):
        return hub_offline() or not _hub_reachable()
    if hub_offline():
        raise ModelUnavailable(
            f"cannot load model {model_id!r}: its weights are not in the local Hugging Face "
            "cache and the hub is offline (HF_HUB_OFFLINE); download it first or give a "
            "local model folder"
        )
    if not _hub_reachable():
        raise ModelUnavailable(
            f"cannot load model {model_id!r}: its weights are not in the local Hugging Face "
            f"cache and the hub did not answer within {HUB_PROBE_TIMEOUT_S:g} s; download it "
            "first or give a local model folder"
        )
    return False


def _load_gguf(path: Path) -> tuple[Any, Any, str, str]:
    """A single-file GGUF model (text-only, e.g. Gemma 3 270M): tokenizer and causal LM.

    transformers dequantises the weights on load (needs the ``gguf`` package).
    """
    if not path.is_file():
        raise ModelUnavailable(f"cannot load model {str(path)!r}: no such GGUF file")
    torch, transformers = _import()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=dtype
        )
    except (OSError, ValueError, KeyError, ImportError) as e:
        reason = " ".join(str(e).split())
        raise ModelUnavailable(f"cannot load GGUF model {str(path)!r}: {reason}") from e
    model.to(device)
    model.eval()
    return tok, model, device, str(dtype).removeprefix("torch.")


def load_model(
    model_id: str, revision: str | None = None, allow_download: bool = True
) -> tuple[Any, Any, str, str]:
    """(processor, model, device, dtype name), loaded once per process for each model.

    Without ``allow_download`` only local folders and the local Hugging Face cache are used: a
    model that is not there fails at once (no network, no retries) with ``model_unavailable``.
    """
    key = (model_id, revision)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        local = Path(model_id).expanduser()
        if model_id.endswith(".gguf"):
            _CACHE[key] = _load_gguf(local)
            return _CACHE[key]
        if model_id.startswith(("/", "./", "../", "~")) and not local.is_dir():
            raise ModelUnavailable(
                f"cannot load model {model_id!r}: no such local directory "
                "(give a model folder or a Hugging Face model id)"
            )
        torch, transformers = _import()
        local_only = False
        if not local.is_dir():
            if allow_download:  # know within seconds whether the hub can serve it
                local_only = check_weights_reachable(model_id, revision)
            else:  # downloads off (workers by default): the local cache only, no network
                local_only = True
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        try:
            processor = transformers.AutoProcessor.from_pretrained(
                model_id, revision=revision, local_files_only=local_only
            )
            model = transformers.AutoModelForImageTextToText.from_pretrained(
                model_id, revision=revision, dtype=dtype, local_files_only=local_only
            )
        except (OSError, ValueError, KeyError) as e:
            if not allow_download:
                raise ModelUnavailable(
                    f"model {model_id!r} is not available locally on this server and downloads "
                    "are off (MGS_MODEL_ALLOW_DOWNLOAD); the administrator must install it first"
                ) from e
            reason = " ".join(str(e).split())  # one line: the CLI prints it as one
            raise ModelUnavailable(
                f"cannot load model {model_id!r}"
                f"{f' at revision {revision}' if revision else ''}: "
                f"{reason}"
            ) from e
        model.to(device)
        model.eval()
        _CACHE[key] = (processor, model, device, str(dtype).removeprefix("torch."))
        return _CACHE[key]


class TransformersBackend:
    """Generates with a local or cached Hugging Face model (greedy, deterministic)."""

    name = "transformers"

    def __init__(
        self, model_id: str, revision: str | None = None, allow_download: bool = True
    ) -> None:
        self.model_id = model_id
        self.revision = revision
        self.allow_download = allow_download

    def generate(self, request: GenerationRequest) -> Generation:
        """Run the model on the prompt and images; only the new tokens are returned."""
        t0 = time.perf_counter()
        processor, model, device, dtype = load_model(
            self.model_id, self.revision, self.allow_download
        )
        t_load = time.perf_counter() - t0
        torch, _ = _import()
        text_only = getattr(processor, "image_processor", None) is None
        if text_only:  # a language model without vision: the prompt alone, no images
            if getattr(processor, "chat_template", None):
                inputs = processor.apply_chat_template(
                    [{"role": "user", "content": request.prompt}],
                    add_generation_prompt=True,
                    tokenize=True,
                    return_dict=True,
                    return_tensors="pt",
                )
            else:
                inputs = processor(request.prompt, return_tensors="pt")
        else:
            content: list[dict[str, Any]] = [
                {"type": "image", "image": im} for im in request.images
            ]
            content.append({"type": "text", "text": request.prompt})
            messages = [{"role": "user", "content": content}]
            inputs = processor.apply_chat_template(
                messages,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        inputs = inputs.to(device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        n_in = int(inputs["input_ids"].shape[-1])
        t1 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=request.max_new_tokens, do_sample=False)
        t_gen = time.perf_counter() - t1
        new = out[0][n_in:]
        text = processor.decode(new, skip_special_tokens=True).strip()
        revision = self.revision or getattr(model.config, "_commit_hash", None)
        return Generation(
            text=text,
            backend=self.name,
            model=self.model_id,
            revision=revision,
            written_by_language_model=True,
            decoding={
                "do_sample": False,
                "max_new_tokens": request.max_new_tokens,
                "dtype": dtype,
                "device": device,
            },
            timings={"load_s": round(t_load, 3), "generate_s": round(t_gen, 3)},
            extra={
                "input_tokens": n_in,
                "output_tokens": len(new),
                "images_used": 0 if text_only else len(request.images),
            },
        )
