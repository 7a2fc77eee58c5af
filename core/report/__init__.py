"""MedGemma reports from an analysis output folder.

:func:`write_report` is a pure function of the folder the analysis stage wrote
(``features.json``, ``analysis.json``, ``spots.csv``, ``figures/``, optionally
``he_image.png`` and ``leakage_context.json``), so a GPU worker can run it later from
stored artifacts. It builds a tissue-blind prompt from ``features.json`` only, passes
it through the leakage gate, asks the chosen backend for a narrative, and writes
``prompt.txt``, ``report.json``, ``report.md``, ``report.html`` and ``report.pdf``.
The report files are written to temporary names and renamed into place; a failed
report stage leaves a ``report.json`` with ``status: failed`` and the error, and no
other report file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.config import Settings, get_settings
from core.errors import BadOption, InputError, PromptLeakage

PROMPT_FILE = "prompt.txt"
LEAKAGE_FINDINGS_FILE = "leakage_findings.json"
MODEL_INPUT_IMAGE = "he_model_input.png"


@dataclass
class ReportOptions:
    """How to write one report."""

    backend: str = "template"  # template | transformers | openai
    model: str | None = None  # model id or local path (transformers); model name (openai)
    prompt_strategy: str = "anti_parroting"
    max_new_tokens: int = 1024
    tiles: int = 0  # extra high-magnification tiles around the most distinct domains
    specimen_id: str | None = None  # the lab's identifier, shown in the report header only


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path.parent} has no {path.name} ({what}); run the analysis first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path.name} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InputError(f"{path.name} must hold a JSON object")
    return data


def _marker_table_path(analysis: dict[str, Any]) -> Path | None:
    prov = analysis.get("provenance") or {}
    for key in ("marker_table", "markers", "marker_table_path"):
        v = prov.get(key)
        if isinstance(v, dict):
            v = v.get("path") or v.get("source")
        if isinstance(v, str) and v.endswith((".tsv", ".txt")) and Path(v).is_file():
            return Path(v)
    return None


def _lexicon(analysis: dict[str, Any]) -> Any:
    """The shipped lexicon, plus the one-organ genes of the run's PanglaoDB table if present."""
    from core.report.leakage import default_lexicon

    lex = default_lexicon()
    path = _marker_table_path(analysis)
    if path is not None:
        from core.markers import load_markers

        try:
            table = load_markers(path)
        except InputError:
            return lex
        if table.organ_of_gene:
            lex = lex.with_marker_genes(table.organ_of_gene)
    return lex


REPORT_OUTPUTS = ("report.json", "report.md", "report.html", "report.pdf")


def write_files_atomically(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary name first, then rename them all into place.

    A failure while rendering or writing leaves no half-written report file behind.
    """
    tmp = {name: out_dir / f".{name}.tmp" for name in files}
    try:
        for name, data in files.items():
            tmp[name].write_bytes(data)
        for name in files:
            tmp[name].replace(out_dir / name)
    finally:
        for p in tmp.values():
            p.unlink(missing_ok=True)


def record_failure(out_dir: Path, error: BaseException) -> None:
    """Replace any report files with a ``report.json`` that records why the stage failed.

    The analysis artifacts are left untouched.
    """
    from core.errors import MGSError

    code = error.code if isinstance(error, MGSError) else "internal_error"
    for name in REPORT_OUTPUTS:
        (out_dir / name).unlink(missing_ok=True)
    doc = {"schema": "mgs.report/1", "status": "failed",
           "error": {"code": str(code), "message": " ".join(str(error).split())[:2000]},
           "failed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    write_files_atomically(out_dir, {"report.json": json.dumps(doc, indent=2).encode("utf-8")})


def write_report(out_dir: Path, options: ReportOptions, settings: Settings | None = None,
                 progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Write the report (see :func:`_write_report`); on failure, record it in ``report.json``.

    The failure is re-raised after it is recorded; the analysis artifacts are not touched.
    """
    try:
        return _write_report(Path(out_dir), options, settings, progress)
    except Exception as e:
        refused = isinstance(e, PromptLeakage)
        if (refused or not isinstance(e, InputError)) and Path(out_dir).is_dir():
            record_failure(Path(out_dir), e)
        raise  # wrong options or a missing analysis folder: nothing to record


def _write_report(out_dir: Path, options: ReportOptions, settings: Settings | None = None,
                  progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Write ``prompt.txt``, ``report.json``, ``report.md`` and ``report.html`` into ``out_dir``.

    Returns the report's provenance.

    Raises
    ------
    PromptLeakage
        The prompt carries something the model must not see (findings listed; also
        written to ``leakage_findings.json``). Nothing was sent to any backend.
    ModelUnavailable
        The model cannot be loaded or reached; there is no silent fallback.
    """
    from core.report.backends import BACKENDS, GenerationRequest, get_backend
    from core.report.image import png_bytes, prepare_images, read_spot_table
    from core.report.leakage import (
        LeakageContext,
        find_leaks,
        findings_as_dicts,
        lexicon_fingerprint,
    )
    from core.report.pdf import PDF_FILE, pdf_available, render_pdf
    from core.report.prompts import STRATEGIES, build_prompt
    from core.report.render import build_report, render_html, render_markdown

    def step(x: float) -> None:
        if progress is not None:
            progress(x)

    out_dir = Path(out_dir)
    settings = settings or get_settings()
    if options.backend not in BACKENDS:
        raise BadOption(f"unknown report backend {options.backend!r}; "
                        f"choose one of {', '.join(BACKENDS)}")
    if options.prompt_strategy not in STRATEGIES:
        raise BadOption(f"unknown prompt strategy {options.prompt_strategy!r}; "
                        f"choose one of {', '.join(STRATEGIES)}")
    if options.max_new_tokens < 1 or options.tiles < 0:
        raise BadOption("max_new_tokens must be at least 1 and tiles at least 0")
    t_start = time.perf_counter()
    features = _read_json(out_dir / "features.json", "tissue-blind features")
    analysis = _read_json(out_dir / "analysis.json", "computed results")
    context = LeakageContext.load(out_dir)
    step(0.05)

    prepared = prepare_images(out_dir, analysis, tiles=options.tiles)
    prompt = build_prompt(features, options.prompt_strategy, n_images=len(prepared.images))
    lexicon = _lexicon(analysis)
    findings = find_leaks(prompt.text, context, features, lexicon)
    if findings:
        (out_dir / LEAKAGE_FINDINGS_FILE).write_text(json.dumps(
            {"prompt_sha256": prompt.sha256, "strategy": prompt.strategy,
             "findings": findings_as_dicts(findings)}, indent=2), encoding="utf-8")
        lines = "\n".join(f"  - {f.describe()}" for f in findings)
        raise PromptLeakage(f"prompt refused by the leakage gate: {len(findings)} finding(s); "
                            f"nothing was sent to any model\n{lines}")
    (out_dir / PROMPT_FILE).write_text(prompt.text, encoding="utf-8")
    if prepared.images:
        (out_dir / MODEL_INPUT_IMAGE).write_bytes(png_bytes(prepared.images[0]))
    step(0.15)

    backend = get_backend(options.backend, options.model, settings)
    request = GenerationRequest(prompt=prompt.text, images=prepared.images, features=features,
                                max_new_tokens=options.max_new_tokens)
    generation = backend.generate(request)
    step(0.85)

    figures = sorted(f"figures/{p.name}" for p in (out_dir / "figures").glob("*.png")) \
        if (out_dir / "figures").is_dir() else []
    provenance: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": generation.backend,
        "model": generation.model,
        "model_revision": generation.revision,
        "written_by_language_model": generation.written_by_language_model,
        "decoding": generation.decoding,
        "prompt_strategy": prompt.strategy,
        "prompt_sha256": prompt.sha256,
        "prompt_file": PROMPT_FILE,
        "prompt_chars": len(prompt.text),
        "images_sent": (0 if options.backend == "template" else
                        int(generation.extra.get("images_used", len(prepared.images)))),
        "image": prepared.info,
        "leakage_gate": {"passed": True, "findings": 0, "lexicon": lexicon_fingerprint(lexicon),
                         "context_strings": sum(len(v) for v in asdict(context).values())},
        "timings": {**generation.timings},
        "backend_details": generation.extra,
        "options": asdict(options),
        "analysis_provenance": analysis.get("provenance") or {},
    }
    spots = read_spot_table(out_dir)
    report = build_report(features, analysis, spots, generation.text, prompt.text,
                          prepared.info, provenance, figures)
    model_input = [("H&E image as sent to the model", png_bytes(prepared.images[0]))] \
        if prepared.images else []
    ctx = asdict(context)
    files: dict[str, bytes] = {
        "report.md": render_markdown(report, analysis, features, ctx).encode("utf-8"),
        "report.html": render_html(report, analysis, features, out_dir, model_input,
                                   ctx).encode("utf-8"),
    }
    if pdf_available():
        files[PDF_FILE] = render_pdf(report, analysis, features, out_dir, model_input, ctx)
        report["pdf"] = {"written": True, "file": PDF_FILE}
    else:
        report["pdf"] = {"written": False,
                         "reason": "fpdf2 is not installed (pip install 'medgemma-spatial[pdf]')"}
    provenance["timings"]["total_s"] = round(time.perf_counter() - t_start, 3)
    report["status"] = "complete"
    files["report.json"] = json.dumps(report, indent=2, default=str).encode("utf-8")
    write_files_atomically(out_dir, files)
    step(1.0)
    return provenance


__all__ = ["ReportOptions", "write_report"]
