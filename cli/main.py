"""``medgemma-spatial``: analyse a sample and write its report, on a laptop with no servers.

Exit codes: 0 success; 1 internal error; 2 bad input (one line saying what is wrong);
4 the leakage gate refused the report prompt (every analysis artifact and the report with
its computed findings are written, without a narrative; nothing was sent to any model).
Service commands (``serve``, ``worker``, ``db``, ``keys``, ...) are registered lazily
from :mod:`cli.service` when the service extra is installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InputError, MGSError, PromptLeakage
from core.options import PromptStrategy, ReportBackend

if TYPE_CHECKING:
    from core.runner import AnalysisSummary

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_PROMPT_REFUSED = 0, 1, 2, 4
EXIT_CODES = (
    "exit codes: 0 success; 1 internal error; 2 bad input (one line saying what is "
    "wrong); 3 (service commands) a configuration error; 4 the leakage gate refused "
    "the report prompt: the analysis and a report without a narrative are written, "
    "nothing was sent to any model"
)


class ProgressPrinter:
    """Stage and percent on stderr; one rewritten line on a terminal, a line per step otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last: tuple[str, int] | None = None
        self.t0 = time.perf_counter()

    def __call__(self, stage: str, frac: float) -> None:
        if self.quiet:
            return
        pct = round(100 * max(0.0, min(1.0, frac)))
        key = (stage, pct // 10 if not self.tty else pct)
        if key == self.last:
            return
        self.last = key
        msg = f"[{time.perf_counter() - self.t0:6.1f}s] {stage:<10} {pct:3d}%"
        if self.tty:
            sys.stderr.write("\r" + msg)
            sys.stderr.flush()
        else:
            print(msg, file=sys.stderr, flush=True)

    def done(self) -> None:
        if not self.quiet and self.tty:
            sys.stderr.write("\n")


def _add_analysis_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output directory (created; an existing file is bad input, exit 2)",
    )
    p.add_argument(
        "--resolution", type=float, default=1.0, help="Leiden resolution, 0.1 to 2.0 (default 1.0)"
    )
    p.add_argument(
        "--markers",
        help="marker table: a PanglaoDB TSV or a cell_type/lineage/genes TSV (default: shipped table)",
    )
    p.add_argument(
        "--species", default="Hs", choices=["Hs", "Mm"], help="species filter for a PanglaoDB table"
    )
    p.add_argument(
        "--organ",
        action="append",
        dest="organs",
        help="organ filter for a PanglaoDB table (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for every randomised step (default 0)")
    p.add_argument(
        "--write-h5ad", action="store_true", help="also write analysis.h5ad (annotated AnnData)"
    )
    p.add_argument(
        "--bin-size", type=int, choices=[2, 8, 16], help="Visium HD bin size to analyse (um)"
    )
    p.add_argument(
        "--unit",
        choices=["cell", "bin"],
        help="Visium HD: analyse cells or bins (default: cells when Space Ranger segmented them)",
    )
    p.add_argument(
        "--n-domains",
        type=int,
        help="fix the number of spatial domains (default: chosen by silhouette)",
    )
    p.add_argument(
        "--backend",
        default=None,
        choices=[b.value for b in ReportBackend],
        help="who writes the narrative (default: MGS_REPORT_BACKEND or template)",
    )
    p.add_argument("--model", help="model id or local path (transformers) / model name (openai)")
    p.add_argument(
        "--prompt-strategy", default="anti_parroting", choices=[s.value for s in PromptStrategy]
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=None, help="most tokens the model may write"
    )
    p.add_argument(
        "--tiles", type=int, default=0, help="extra high-magnification H&E tiles for the model"
    )
    p.add_argument("--no-report", action="store_true", help="analysis only (no report stage)")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medgemma-spatial",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse a sample and write the report", epilog=EXIT_CODES)
    a.add_argument(
        "sample", type=Path, help=".h5ad, Space Ranger outs/ folder, or .zip/.tar.gz of one"
    )
    _add_analysis_args(a)
    d = sub.add_parser(
        "demo", help="make a synthetic sample, analyse it, print where the report is"
    )
    d.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="output directory (default ./demo-out)"
    )
    d.add_argument("--layout", choices=["visium", "hd"], default="visium")
    d.add_argument("--spots", type=int, default=2000)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true")
    e = sub.add_parser("eval", help="validation suites")
    esub = e.add_subparsers(dest="suite", required=True)
    # its own options (--tissue, --seed, --help) are parsed by core.report.evaluation.main
    esub.add_parser(
        "leakage", help="adversarial validation of the prompt leakage gate", add_help=False
    )
    try:
        from cli.service import register  # needs the service extra
    except ImportError:
        pass
    else:
        register(sub)
    return parser


def _analyze(args: Any, sample: Path, progress: ProgressPrinter) -> AnalysisSummary:
    from core.config import get_settings
    from core.options import AnalysisOptions, ReportOptions
    from core.runner import run_analysis_stage

    settings = get_settings()
    # one model and one set of bounds for the CLI, the API and the workers: a value out of
    # bounds is bad input (exit 2) before anything runs
    opts = AnalysisOptions.parse(
        resolution=args.resolution,
        seed=args.seed,
        markers=str(args.markers) if args.markers else None,
        species=args.species,
        organs=args.organs,
        write_h5ad=args.write_h5ad,
        bin_size=args.bin_size,
        n_domains=args.n_domains,
        unit=getattr(args, "unit", None),
    )
    ropts = None
    if not args.no_report:
        ropts = ReportOptions.parse(
            backend=args.backend or settings.report_backend,
            model=args.model,
            prompt_strategy=args.prompt_strategy,
            max_new_tokens=args.max_new_tokens or settings.max_new_tokens,
            tiles=args.tiles,
        )
    summary = run_analysis_stage(sample, args.out, opts, settings, progress)
    if not args.quiet:
        progress.done()
        for note in summary.get("notes", []):
            print(f"note: {note}", file=sys.stderr, flush=True)
    if ropts is not None:
        from core.report import write_report

        summary["report"] = write_report(
            args.out, ropts, settings, lambda f: progress("reporting", f)
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # ``eval`` suites parse their own options (``eval leakage --tissue colon``): pass the
    # unknown arguments on to them, refuse them anywhere else.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "eval":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "analyze":
            progress = ProgressPrinter(args.quiet)
            summary = _analyze(args, args.sample, progress)
            progress.done()
            if not args.quiet:
                _print_summary(args.out, summary)
            return 0
        if args.command == "demo":
            return _demo(args)
        if args.command == "eval" and args.suite == "leakage":
            from core.report.evaluation import main as eval_leakage

            return eval_leakage(extra)
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args) or 0)
        parser.error(f"unknown command {args.command}")
    except PromptLeakage as e:
        print(f"error: {e.code}: {e.detail}", file=sys.stderr)
        return EXIT_PROMPT_REFUSED
    except InputError as e:
        print(f"error: {e.code}: {e.detail}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MGSError as e:
        print(f"error: {e.code}: {e.detail}", file=sys.stderr)
        return int(getattr(e, "exit_code", 1))  # 3: a configuration error (database, broker)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # internal error: one line, traceback only on request
        print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
        if os.environ.get("MGS_DEBUG"):
            traceback.print_exc()
        else:
            print("(set MGS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


def _print_summary(out: Path, summary: AnalysisSummary) -> None:
    t = summary.get("timings", {}).get("total")
    print(
        f"analysed {summary['n_spots']} {summary['layout']} spots into {summary['n_domains']} domains"
        + (f" in {t:.1f} s" if t else "")
    )
    print(f"results: {out.resolve()}")
    if (out / "report.html").exists():
        print(f"report:  {(out / 'report.html').resolve()}")


def _demo(args: Any) -> int:
    from core.runner import check_out_dir
    from core.synth import write_sample

    out: Path = args.out
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    sample = out / f"synthetic_{args.layout}.h5ad"
    if not args.quiet:
        print(
            f"writing a synthetic {args.layout} sample ({args.spots} spots) to {sample}",
            file=sys.stderr,
        )
    write_sample(
        sample,
        layout="visium" if args.layout == "visium" else "hd",
        n_spots=args.spots,
        seed=args.seed,
    )
    ns = argparse.Namespace(
        out=out / "result",
        resolution=1.0,
        markers=None,
        species="Hs",
        organs=None,
        seed=args.seed,
        write_h5ad=False,
        bin_size=None,
        n_domains=None,
        backend="template",
        model=None,
        prompt_strategy="anti_parroting",
        max_new_tokens=None,
        tiles=0,
        no_report=False,
        quiet=args.quiet,
    )
    progress = ProgressPrinter(args.quiet)
    summary = _analyze(ns, sample, progress)
    progress.done()
    _print_summary(ns.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
