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
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings, get_settings
from core.errors import InputError, PromptLeakage
from core.features import FeaturesRecord, read_features
from core.jsonable import as_number
from core.options import ReportOptions
from core.report.report_json import LeakageGate, NarrativeOutcome, ReportProvenance
from core.results import AnalysisRecord, read_analysis

if TYPE_CHECKING:
    from core.report.backends import Generation
    from core.report.image import PreparedImages
    from core.report.leakage import LeakageContext, Lexicon
    from core.report.prompts import Prompt

PROMPT_FILE = "prompt.txt"
LEAKAGE_FINDINGS_FILE = "leakage_findings.json"
MODEL_INPUT_IMAGE = "he_model_input.png"


def _marker_table_path(analysis: AnalysisRecord) -> Path | None:
    """The marker table the analysis ran with, where it is still on disk.

    The runner records the path the user gave in ``provenance.options.markers`` and the
    table's source name in ``annotation.marker_table`` (``panglao:<path>`` for PanglaoDB).
    """
    markers = analysis.provenance.options.get("markers")
    for v in (markers if isinstance(markers, str) else None, analysis.annotation.marker_table):
        if isinstance(v, str):
            v = v.removeprefix("panglao:")
            if v.endswith((".tsv", ".txt")) and Path(v).is_file():
                return Path(v)
    return None


def _lexicon(analysis: AnalysisRecord) -> Lexicon:
    """The shipped lexicon, plus the one-organ genes of the run's PanglaoDB table if present."""
    from core.report.leakage import default_lexicon

    lex = default_lexicon()
    path = _marker_table_path(analysis)
    if path is not None:
        from core.markers import load_markers

        sp = analysis.provenance.options.get("species")
        species = sp if sp in ("Hs", "Mm") else "Hs"
        try:
            table = load_markers(path, species=str(species))
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
    doc = {
        "schema": "mgs.report/1",
        "status": "failed",
        "error": {"code": str(code), "message": " ".join(str(error).split())[:2000]},
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_files_atomically(out_dir, {"report.json": json.dumps(doc, indent=2).encode("utf-8")})


def _provenance(
    generation: Generation | None,
    prompt: Prompt,
    prepared: PreparedImages,
    options: ReportOptions,
    analysis: AnalysisRecord,
    gate: LeakageGate,
) -> ReportProvenance:
    g = generation
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": g.backend if g else None,
        "model": g.model if g else None,
        "model_revision": g.revision if g else None,
        "written_by_language_model": g.written_by_language_model if g else False,
        "decoding": g.decoding if g else None,
        "prompt_strategy": prompt.strategy,
        "prompt_sha256": prompt.sha256,
        "prompt_file": PROMPT_FILE if g else None,
        "prompt_chars": len(prompt.text),
        "images_sent": (
            0
            if not g or options.backend == "template"
            else int(as_number(g.extra.get("images_used", len(prepared.images))))
        ),
        "image": prepared.info,
        "leakage_gate": gate,
        "timings": {**g.timings} if g else {},
        "backend_details": g.extra if g else {},
        "options": options.as_dict(),
        "analysis_provenance": analysis.provenance.model_dump(mode="json"),
    }


def narrative_outcome(provenance: ReportProvenance) -> NarrativeOutcome:
    """``{"status": "written"}``, or ``{"status": "withheld", "code", "detail"}`` when the
    report carries no narrative (``prompt_leakage``: the leakage gate refused the prompt)."""
    if not provenance.get("narrative_withheld"):
        return {"status": "written"}
    return {
        "status": "withheld",
        "code": str(provenance.get("narrative_withheld_code") or "narrative_withheld"),
        "detail": str(provenance["narrative_withheld"]),
    }


def _write_outputs(
    out_dir: Path,
    features: FeaturesRecord,
    analysis: AnalysisRecord,
    prompt: Prompt,
    prepared: PreparedImages,
    provenance: ReportProvenance,
    narrative: str,
    context: LeakageContext,
    t_start: float,
) -> None:
    """Render report.json, .md, .html and .pdf from one document and write them atomically."""
    from core.report.html_page import render_html
    from core.report.image import png_bytes, read_spot_table
    from core.report.markdown import render_markdown
    from core.report.pdf import PDF_FILE, pdf_available, render_pdf
    from core.report.render import build_report

    figures = (
        sorted(f"figures/{p.name}" for p in (out_dir / "figures").glob("*.png"))
        if (out_dir / "figures").is_dir()
        else []
    )
    spots = read_spot_table(out_dir)
    report = build_report(
        features, analysis, spots, narrative, prompt.text, prepared.info, provenance, figures
    )
    model_input = (
        [("H&E image as sent to the model", png_bytes(prepared.images[0]))]
        if prepared.images and provenance.get("backend")
        else []
    )
    ctx = asdict(context)
    files: dict[str, bytes] = {
        "report.md": render_markdown(report, analysis, features, ctx).encode("utf-8"),
        "report.html": render_html(report, analysis, features, out_dir, model_input, ctx).encode(
            "utf-8"
        ),
    }
    if pdf_available():
        files[PDF_FILE] = render_pdf(report, analysis, features, out_dir, model_input, ctx)
        report["pdf"] = {"written": True, "file": PDF_FILE}
    else:
        report["pdf"] = {
            "written": False,
            "reason": "fpdf2 is not installed (pip install 'medgemma-spatial[pdf]')",
        }
    provenance["timings"]["total_s"] = round(time.perf_counter() - t_start, 3)
    report["status"] = (
        "complete"
        if narrative or not provenance.get("narrative_withheld")
        else "narrative_withheld"
    )
    # what a LIMS reads: was a narrative written, and if not, why (a stable code)
    report["narrative"] = narrative_outcome(provenance)
    files["report.json"] = json.dumps(report, indent=2, default=str).encode("utf-8")
    write_files_atomically(out_dir, files)


def write_report(
    out_dir: Path,
    options: ReportOptions,
    settings: Settings | None = None,
    progress: Callable[[float], None] | None = None,
) -> ReportProvenance:
    """Write the report (see :func:`_write_report`); on failure, record it in ``report.json``.

    The failure is re-raised after it is recorded; the analysis artifacts are not touched. A
    prompt refused by the leakage gate is not a failure of the report: it was written with the
    computed findings and no narrative, and :class:`PromptLeakage` tells the caller.
    """
    try:
        return _write_report(Path(out_dir), options, settings, progress)
    except PromptLeakage:
        raise
    except Exception as e:
        if not isinstance(e, InputError) and Path(out_dir).is_dir():
            record_failure(Path(out_dir), e)
        raise  # wrong options or a missing analysis folder: nothing to record


def _write_report(
    out_dir: Path,
    options: ReportOptions,
    settings: Settings | None = None,
    progress: Callable[[float], None] | None = None,
) -> ReportProvenance:
    """Write ``prompt.txt``, ``report.json``, ``report.md``, ``report.html`` and ``report.pdf``.

    Returns the report's provenance.

    Raises
    ------
    PromptLeakage
        The prompt carries something the model must not see (findings listed; also
        written to ``leakage_findings.json``). Nothing was sent to any backend; the
        report files are written with the computed findings and no narrative.
    ModelUnavailable
        The model cannot be loaded or reached; there is no silent fallback.
    """
    from core.report.backends import GenerationRequest, get_backend
    from core.report.image import png_bytes, prepare_images
    from core.report.leakage import (
        LeakageContext,
        find_leaks,
        findings_as_dicts,
        lexicon_fingerprint,
    )
    from core.report.prompts import build_prompt

    def step(x: float) -> None:
        if progress is not None:
            progress(x)

    out_dir = Path(out_dir)
    settings = settings or get_settings()
    # ``options`` is a validated :class:`core.options.ReportOptions`: backend, strategy and
    # bounds were checked where it was built (CLI, API, worker), once.
    t_start = time.perf_counter()
    # read through the contract; the prompt and the leakage gate see the document as written
    record = read_features(out_dir)
    features = record.to_dict()
    analysis = read_analysis(out_dir / "analysis.json")
    context = LeakageContext.load(out_dir)
    step(0.05)

    prepared = prepare_images(out_dir, analysis.image, tiles=options.tiles)
    prompt = build_prompt(features, options.prompt_strategy, n_images=len(prepared.images))
    lexicon = _lexicon(analysis)
    findings = find_leaks(prompt.text, context, features, lexicon)
    gate: LeakageGate = {
        "passed": not findings,
        "findings": len(findings),
        "lexicon": lexicon_fingerprint(lexicon),
        "context_strings": sum(len(v) for v in asdict(context).values()),
    }
    if findings:
        (out_dir / LEAKAGE_FINDINGS_FILE).write_text(
            json.dumps(
                {
                    "prompt_sha256": prompt.sha256,
                    "strategy": prompt.strategy,
                    "findings": findings_as_dicts(findings),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        # The analysis stands: write the report with its computed findings and no narrative,
        # then tell the caller (the CLI exits with its own code, a job records the refusal).
        provenance = _provenance(None, prompt, prepared, options, analysis, gate)
        provenance["narrative_withheld"] = (
            f"the leakage gate refused the prompt ({len(findings)} finding(s), listed in "
            f"{LEAKAGE_FINDINGS_FILE}); nothing was sent to any model"
        )
        provenance["narrative_withheld_code"] = PromptLeakage.code
        provenance["leakage_gate"]["findings_list"] = findings_as_dicts(findings)
        _write_outputs(
            out_dir, record, analysis, prompt, prepared, provenance, "", context, t_start
        )
        lines = "\n".join(f"  - {f.describe()}" for f in findings)
        raise PromptLeakage(
            f"prompt refused by the leakage gate: {len(findings)} finding(s); "
            f"nothing was sent to any model; the report was written without "
            f"a narrative\n{lines}"
        )
    (out_dir / PROMPT_FILE).write_text(prompt.text, encoding="utf-8")
    if prepared.images:
        (out_dir / MODEL_INPUT_IMAGE).write_bytes(png_bytes(prepared.images[0]))
    step(0.15)

    backend = get_backend(options.backend, options.model, settings)
    request = GenerationRequest(
        prompt=prompt.text,
        images=prepared.images,
        features=features,
        max_new_tokens=options.max_new_tokens,
    )
    generation = backend.generate(request)
    step(0.85)

    provenance = _provenance(generation, prompt, prepared, options, analysis, gate)
    _write_outputs(
        out_dir, record, analysis, prompt, prepared, provenance, generation.text, context, t_start
    )
    step(1.0)
    return provenance


__all__ = ["ReportOptions", "write_report"]
