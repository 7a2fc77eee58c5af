"""The report as a reader sees it: report.html in headless Chromium at 1280 px and at A4
print width, report.pdf read back with pypdf.

The HTML checks skip when chromium/chromedriver or selenium are missing (CI: apt-get
install -y chromium chromium-driver); the PDF checks skip without fpdf2/pypdf.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.report import ReportOptions, write_report
from core.report.examples import example_features
from tests.fixtures.report_outputs import write_output_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECTIONS = (
    "Impression",
    "Findings",
    "Sample quality",
    "Tissue architecture and domains",
    "Cell populations and composition",
    "Spatial organisation",
    "Limitations",
    "Methods",
    "Appendix",
)
A4_CONTENT_PX = 688  # 210 mm minus 2 x 14 mm margins at 96 px per inch


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template report of the synthetic sample, with a specimen id given by the lab."""
    d = write_output_dir(
        tmp_path_factory.mktemp("reader"),
        features=example_features(),
        context={"sample_ids": ["LAB-2026-0042"]},
    )
    write_report(d, ReportOptions())
    return d


def _field_names(*docs: Any) -> set[str]:
    """Every key with an underscore in the documents: raw field names a reader must not see."""
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str) and "_" in k:
                    out.add(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for d in docs:
        walk(d)
    return out


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1000",
    ):
        opts.add_argument(flag)
    service = webdriver.ChromeService(
        executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")
    )
    drv = webdriver.Chrome(options=opts, service=service)
    try:
        yield drv
    finally:
        drv.quit()


_PAGE_FACTS = """
document.querySelectorAll('details').forEach(d => d.open = true);
const figs = [...document.querySelectorAll('figure')];
const empty = [...document.querySelectorAll('dd, td, th, li, p, figcaption, h2, h3')]
  .filter(e => !e.innerText.trim()).map(e => e.outerHTML.slice(0, 120));
const wide = [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map(e => e.tagName + '.' + e.className).slice(0, 5);
return {
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  wide: wide,
  text: document.body.innerText,
  figures: figs.map(f => ({caption: (f.querySelector('figcaption') || {innerText: ''}).innerText,
                           img: !!f.querySelector('img')})),
  empty: empty,
};
"""


def _check_page(facts: dict[str, Any], field_names: set[str]) -> None:
    assert facts["scrollWidth"] <= facts["clientWidth"], facts["wide"]
    assert not facts["wide"], facts["wide"]
    assert not facts["empty"], facts["empty"]
    caps = [f["caption"] for f in facts["figures"]]
    assert caps and all(f["img"] for f in facts["figures"])
    numbers = [int(m.group(1)) for c in caps if (m := re.match(r"Figure (\d+)\. \S", c))]
    assert numbers == list(range(1, len(caps) + 1)), caps  # every figure captioned, in order
    text = facts["text"]
    for s in SECTIONS:
        assert s in text, s
    leaked = sorted(
        n for n in field_names if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w.])", text)
    )
    assert not leaked, leaked
    assert not re.search(r"\b(None|null|nan|undefined)\b", text)
    assert "LAB-2026-0042" in text and "Research use only" in text


def test_html_reads_at_1280_px_and_at_a4_print_width(report_dir: Path, browser: Any) -> None:
    features = json.loads((report_dir / "features.json").read_text())
    analysis = json.loads((report_dir / "analysis.json").read_text())
    names = _field_names(features, analysis)
    assert {"median_genes_per_unit", "units_analysed", "fraction_of_units"} <= names
    browser.get((report_dir / "report.html").as_uri())
    facts = browser.execute_script(_PAGE_FACTS)
    assert facts["clientWidth"] >= 1200
    _check_page(facts, names)

    # A4 print: print media at the printable width of an A4 page
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": A4_CONTENT_PX, "height": 1123, "deviceScaleFactor": 1, "mobile": False},
    )
    facts = browser.execute_script(_PAGE_FACTS)
    assert 600 < facts["clientWidth"] <= A4_CONTENT_PX
    _check_page(facts, names)
    printed = browser.execute_cdp_cmd("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69})
    assert printed["data"]


def test_pdf_reads_back_with_every_section(report_dir: Path) -> None:
    pypdf = pytest.importorskip("pypdf", reason="pypdf is not installed (dev extra)")
    pytest.importorskip("fpdf", reason="fpdf2 is not installed (pdf extra)")
    report = json.loads((report_dir / "report.json").read_text())
    assert report["pdf"] == {"written": True, "file": "report.pdf"}
    reader = pypdf.PdfReader(str(report_dir / "report.pdf"))
    pages = [p.extract_text() or "" for p in reader.pages]
    assert len(pages) >= 2
    for i, t in enumerate(pages):
        assert "Research use only" in t, f"page {i + 1} lacks the research-use statement"
    text = "\n".join(pages)
    for s in SECTIONS:
        assert s in text, s
    assert "LAB-2026-0042" in text and "Preliminary" in text
    n_figs = len(re.findall(r"Figure \d+\. ", text))
    assert n_figs >= 1
    features = json.loads((report_dir / "features.json").read_text())
    flat = re.sub(r"\s+", " ", text)
    leaked = [n for n in _field_names(features) if n in flat]
    assert not leaked, leaked
