"""GPU throughput of report generation with a MedGemma 4B-shaped model (random bf16 weights).

Throughput does not depend on weight values, so the model is built from MedGemma 4B's
published configuration (Gemma 3 4B text decoder + SigLIP 896 px vision tower, 256 image
tokens) with random weights; nothing is downloaded. The input is one 896x896 image and
the real anti-parroting prompt of the synthetic example sample (its length in tokens is
estimated at 3.6 characters per token, since the Gemma tokenizer is not available
offline; token ids are drawn at random from the vocabulary).

Measured, one table at the end:

- transformers, single stream: greedy decoding of a report-length answer
  (``--new-tokens``, default 512) with the static KV cache and the forward pass compiled
  (``torch.compile``, mode ``reduce-overhead``); tokens/s after one warm-up generation;
- transformers, batch of 16 (static cache, compiled): aggregate tokens/s;
- vLLM, 16 concurrent requests (only where ``vllm`` imports): aggregate tokens/s, text
  decoder only with the image tokens' positions filled by text tokens (vLLM's
  multimodal path needs the real processor).

Goal: >= 150 tokens/s single stream on an H100. Usage::

    python bench/gpu_report.py [--new-tokens 512] [--skip-vllm]

Runs in under 8 minutes on an H100 (most of it compilation).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IMAGE_SIZE = 896
CHARS_PER_TOKEN = 3.6


def medgemma_4b_config() -> Any:
    """MedGemma 4B (google/medgemma-4b-it) configuration, as published."""
    from transformers import Gemma3Config

    return Gemma3Config(
        text_config={
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "num_hidden_layers": 34,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "vocab_size": 262208,
            "max_position_embeddings": 131072,
            "sliding_window": 1024,
            "rope_theta": 1_000_000.0,
            "rope_local_base_freq": 10_000.0,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
            "query_pre_attn_scalar": 256,
            "final_logit_softcapping": None,
            "attn_logit_softcapping": None,
        },
        vision_config={
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "image_size": IMAGE_SIZE,
            "patch_size": 14,
            "vision_use_head": False,
        },
        mm_tokens_per_image=256,
        boi_token_index=255999,
        eoi_token_index=256000,
        image_token_index=262144,
    )


def prompt_tokens(cfg: Any, batch: int, torch: Any) -> dict[str, Any]:
    """input_ids (BOS, text, <boi>, 256 image tokens, <eoi>, text) and pixel values."""
    from core.report.examples import example_features
    from core.report.prompts import build_prompt

    text = build_prompt(example_features(), "anti_parroting", n_images=1).text
    n_text = math.ceil(len(text) / CHARS_PER_TOKEN)
    g = torch.Generator().manual_seed(0)
    body = torch.randint(1000, 200_000, (batch, n_text), generator=g)
    img = torch.full((batch, cfg.mm_tokens_per_image), cfg.image_token_index)
    ids = torch.cat(
        [
            torch.full((batch, 1), 2),
            body[:, :16],
            torch.full((batch, 1), cfg.boi_token_index),
            img,
            torch.full((batch, 1), cfg.eoi_token_index),
            body[:, 16:],
        ],
        dim=1,
    )
    pixels = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": pixels,
        "token_type_ids": (ids == cfg.image_token_index).long(),
    }


def bench_transformers(
    model: Any, cfg: Any, batch: int, new_tokens: int, torch: Any
) -> dict[str, Any]:
    inputs = {k: v.to("cuda") for k, v in prompt_tokens(cfg, batch, torch).items()}
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    kw = {
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,
        "do_sample": False,
        "cache_implementation": "static",
    }
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(**inputs, **kw)  # warm-up: compilation and cache allocation
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**inputs, **kw)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    n_new = (out.shape[1] - inputs["input_ids"].shape[1]) * batch
    return {
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "new_tokens": n_new,
        "seconds": round(dt, 2),
        "tokens_per_s": round(n_new / dt, 1),
        "warmup_s": round(warm, 1),
    }


def bench_vllm(model_dir: Path, cfg: Any, n_requests: int, new_tokens: int) -> dict[str, Any]:
    import torch
    from vllm import LLM, SamplingParams  # type: ignore[import-not-found]

    ids = prompt_tokens(cfg, n_requests, torch)["input_ids"]
    ids[ids >= 255999] = 1000  # text-only: image positions filled with text tokens
    llm = LLM(
        model=str(model_dir),
        skip_tokenizer_init=True,
        dtype="bfloat16",
        max_model_len=4096,
        gpu_memory_utilization=0.85,
        seed=0,
    )
    sp = SamplingParams(
        max_tokens=new_tokens, min_tokens=new_tokens, temperature=0.0, detokenize=False
    )
    prompts = [{"prompt_token_ids": row.tolist()} for row in ids]
    llm.generate(prompts[:1], sp)  # warm-up
    t0 = time.perf_counter()
    outs = llm.generate(prompts, sp)
    dt = time.perf_counter() - t0
    n_new = sum(len(o.outputs[0].token_ids) for o in outs)
    return {
        "prompt_tokens": int(ids.shape[1]),
        "new_tokens": n_new,
        "seconds": round(dt, 2),
        "tokens_per_s": round(n_new / dt, 1),
        "warmup_s": None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--skip-vllm", action="store_true")
    a = ap.parse_args()
    import torch
    from transformers import Gemma3ForConditionalGeneration

    if not torch.cuda.is_available():
        sys.exit("bench/gpu_report.py needs a CUDA GPU")
    t0 = time.perf_counter()
    cfg = medgemma_4b_config()
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Gemma3ForConditionalGeneration(cfg).to(torch.bfloat16).eval()
    model.generation_config.pad_token_id = 0
    model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"# {torch.cuda.get_device_name()}, {n_params / 1e9:.2f} B parameters (random bf16), "
        f"built in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    rows = [
        (
            "transformers, 1 stream (static cache, compiled)",
            bench_transformers(model, cfg, 1, a.new_tokens, torch),
        )
    ]
    print(rows[-1], flush=True)
    rows.append(
        (
            f"transformers, batch {a.batch} (static cache, compiled)",
            bench_transformers(model, cfg, a.batch, a.new_tokens, torch),
        )
    )
    print(rows[-1], flush=True)
    if not a.skip_vllm:
        try:
            import vllm  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            rows.append((f"vLLM, {a.batch} concurrent", {"note": "vllm is not installed"}))
        else:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                Gemma3ForConditionalGeneration(cfg).to(torch.bfloat16).save_pretrained(tmp)
                del model
                torch.cuda.empty_cache()
                rows.append(
                    (
                        f"vLLM, {a.batch} concurrent (text decoder)",
                        bench_vllm(Path(tmp), cfg, a.batch, a.new_tokens),
                    )
                )
    print("\n| setup | prompt tokens | new tokens | seconds | tokens/s |\n|---|---|---|---|---|")
    for name, r in rows:
        if "note" in r:
            print(f"| {name} | {r['note']} | | | |")
        else:
            print(
                f"| {name} | {r['prompt_tokens']} | {r['new_tokens']} | {r['seconds']} | "
                f"{r['tokens_per_s']} |"
            )


if __name__ == "__main__":
    main()
