"""The lab console in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): sign in with a key, upload the real Visium sample (.tar.gz) with the progress
bar, watch the job in the list, open it, and review it: the report (sections, computed
tables apart from the narrative, claim-check marks, figures through blob: URLs, downloads)
beside the H&E in OpenSeadragon with toggleable layers; a domain's composition and
findings; a submitter sees no sign button, a reviewer signs final and amends, the history
shows both and the PDF/FHIR/HL7 exports carry the status. The job list: filters, keyset
pages and live updates of the rows on screen only. axe-core (vendored, tests/service/vendor)
runs on each view: no serious or critical violations. Screenshots at 1280 and 1920 px go to
the test's tmp dir (kept by pytest under its basetemp; the path is printed).

The API runs as in its slim image: the scientific stack and torch are made unimportable
in its process (tests/deploy/api_image.py). Workers and relay are the real
processes the e2e tests start; the report is written by the template backend.

Skips when chromium/chromedriver or selenium are missing (CI: apt-get install -y chromium
chromium-driver) or when ../shared/data is absent.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.api_image import blocker_dir
from tests.service.conftest import ROOT, make_key, start_api, start_relay, start_worker
from tests.service.helpers import VISIUM_DIR, client, spaceranger_targz, tenant_of, upload

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
    ),
    pytest.mark.skipif(
        not VISIUM_DIR.is_dir(), reason="../shared/data/visium_10x_v1_subset is absent"
    ),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

JOB_TIMEOUT_S = 900
UPLOAD_CHUNK = 128 * 1024
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def stack(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[str]:
    """API (as in its image), relay, CPU worker and report worker (template backend)."""
    logs = tmp_path_factory.mktemp("console-logs")
    env = {**service_env, "MGS_REPORT_BACKEND": "template"}
    api_env = {
        **env,
        "PYTHONPATH": f"{blocker_dir(logs)}:{ROOT}",
        "MGS_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
        # small chunks: the ~0.6 MB sample goes through a resumable session in 5 chunks
        "MGS_UPLOAD_CHUNK_BYTES": str(UPLOAD_CHUNK),
    }
    api_proc, base = start_api(api_env, logs / "api.log")
    procs = [
        api_proc,
        start_relay(env, logs / "relay.log"),
        start_worker(env, logs / "analysis.log", "analysis"),
        start_worker(env, logs / "report.log", "report"),
    ]
    yield base
    for p in procs:
        p.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,2000",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(
        executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")
    )
    try:
        driver = webdriver.Chrome(options=opts, service=service)
    except WebDriverException as e:  # a broken local chromium is not the project's failure
        pytest.skip(f"chromium did not start: {e.msg}")
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _wait(driver: Any, timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.25)


def _text(driver: Any, css: str) -> str:
    # read in one script call: the live list replaces its rows every poll (no stale elements)
    text = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css
    )
    assert text is not None, f"nothing matches {css}"
    return str(text).strip()


def _page_state(driver: Any) -> str:
    """What the page said, for an assertion message: its error lines and the browser console."""
    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".error") if e.text]
    try:
        console = [f"{m['level']}: {m['message']}" for m in driver.get_log("browser")]
    except WebDriverException:
        console = []
    return f"page errors: {errors}; console: {console[-20:]}"


def _screenshot(driver: Any, path: Path, width: int = 1280) -> Path:
    # grow the window to the page so the whole report is in one picture
    driver.set_window_size(width, 1000)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 100, 12000))
    driver.save_screenshot(str(path))
    return path


def _axe(driver: Any, where: str) -> list[dict[str, Any]]:
    """axe-core on the page as it is: the serious and critical violations (none expected)."""
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify("
        "r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))).catch(e => done("
        "JSON.stringify([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}])));"
    )
    bad = [v for v in json.loads(result) if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe on {where}: {bad}"
    return bad


def _sign_in(driver: Any, base: str, key: str) -> None:
    driver.get(base + "/")
    _wait(driver).until(
        lambda d: (
            d.find_element(By.ID, "api-key").is_displayed()
            or d.find_element(By.ID, "jobs-view").is_displayed()
        )
    )
    if driver.find_element(By.ID, "api-key").is_displayed():
        driver.find_element(By.ID, "api-key").send_keys(key)
        driver.find_element(By.ID, "sign-in").click()
    _wait(driver).until(lambda d: d.find_element(By.ID, "jobs-view").is_displayed())


def test_sign_in_refuses_a_bad_key(stack: str, browser: Any) -> None:
    browser.get(stack + "/")
    _wait(browser).until(lambda d: d.find_element(By.ID, "sign-in-view").is_displayed())
    browser.find_element(By.ID, "api-key").send_keys("mgs_not_a_key")
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser).until(lambda d: d.find_element(By.ID, "sign-in-error").is_displayed())
    assert "not valid" in _text(browser, "#sign-in-error")
    assert browser.execute_script("return sessionStorage.getItem('mgs_api_key')") is None


def test_unverified_numbers_are_marked(stack: str, browser: Any) -> None:
    """The console marks the numbers report.json lists as unverified, and only those."""
    browser.get(stack + "/")
    html = browser.execute_script(
        "const d = document.createElement('div');"
        "d.append(markedNarrative('1. About 12.5 % of 3,400 spots; 12.5 % again; 7 domains.',"
        " ['12.5 %', '7']));"
        "return d.innerHTML;"
    )
    assert html.count('<mark class="unverified"') == 3, html
    assert (
        "3,400" in html
        and '<mark class="unverified" title="matches no computed value">3,400' not in html
    )
    # the ordinal "1." is never a number of the narrative
    assert html.startswith("1. About"), html


def test_upload_watch_review_sign_and_export(
    stack: str,
    browser: Any,
    tenant_a: dict[str, str],
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    sample = tmp_path / "visium_10x_v1_subset.tar.gz"
    sample.write_bytes(spaceranger_targz())

    browser.get(stack + "/")
    _wait(browser).until(lambda d: d.find_element(By.ID, "api-key").is_displayed())
    _axe(browser, "sign-in view")
    _sign_in(browser, stack, tenant_a["key"])
    assert browser.execute_script("return sessionStorage.getItem('mgs_api_key')") == tenant_a["key"]
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#option-fields [data-option]"))
    _axe(browser, "jobs view")

    # record every value the progress bar takes while the XHR upload runs
    browser.execute_script(
        "window.__progress = [];"
        "new MutationObserver(() => window.__progress.push(Number(document.getElementById("
        "'upload-progress').value))).observe(document.getElementById('upload-progress'),"
        " {attributes: true});"
        "const bar = document.getElementById('upload-progress');"
        "const d = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');"
        "Object.defineProperty(bar, 'value', {get() { return d.get.call(this); },"
        " set(v) { d.set.call(this, v); window.__progress.push(Number(v)); }});"
    )
    browser.find_element(By.ID, "sample-file").send_keys(str(sample))
    browser.find_element(By.ID, "sample-id").send_keys("CONSOLE-0001")
    browser.find_element(By.CSS_SELECTOR, "#backend option[value=template]").click()
    browser.find_element(By.ID, "upload-button").click()
    _wait(browser, 120).until(lambda d: "submitted job" in _text(d, "#upload-text"))
    progress = browser.execute_script("return window.__progress")
    assert progress and progress[-1] == 100 and max(progress) == 100, progress
    chunks = browser.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.initiatorType === "
        "'xmlhttprequest' && /\\/v1\\/uploads\\/sessions\\/[^/]+$/.test(e.name)).length"
    )
    assert chunks >= -(-sample.stat().st_size // UPLOAD_CHUNK) > 1, chunks  # one PUT per chunk
    assert len({p for p in progress if 0 < p < 100}) > 1, progress  # the bar moved per chunk
    job_id = _text(browser, "#upload-text").rsplit(" ", 1)[-1]

    # the job list shows the job with its live state
    row = f"tr[data-job='{job_id}']"
    _wait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    assert "CONSOLE-0001" in _text(browser, row)
    seen = set()
    deadline = time.time() + JOB_TIMEOUT_S
    while time.time() < deadline:
        state = _text(browser, f"{row} [data-field=state]")
        seen.add((state, _text(browser, f"{row} [data-field=stage]")))
        if state in ("succeeded", "failed", "canceled"):
            break
        time.sleep(0.5)
    assert state == "succeeded", seen
    assert ("succeeded", "reporting") in seen
    _screenshot(browser, tmp_path / "console-jobs.png")

    # the job page: summary, report sections, figures, downloads
    browser.find_element(By.CSS_SELECTOR, f"{row} a").click()
    try:
        _wait(browser, 60).until(lambda d: d.find_element(By.ID, "report").is_displayed())
    except Exception:
        _screenshot(browser, tmp_path / "console-job-failed.png")
        raise AssertionError(_page_state(browser)) from None
    assert browser.current_url.endswith(f"#/jobs/{job_id}")
    assert _text(browser, "#job-summary [data-field=state]") == "succeeded"
    assert "not a diagnosis" in _text(browser, "#report .disclaimer")
    sections = browser.find_elements(By.CSS_SELECTOR, "#report .report-section")
    ids = [s.get_attribute("data-section") for s in sections]
    assert ids[:7] == [
        "specimen_and_qc",
        "tissue_architecture",
        "cell_populations",
        "spatial_organisation",
        "morphology",
        "uncertainty",
        "follow_up",
    ], ids
    for s in sections[:7]:
        # computed tables and the narrative, apart
        assert s.find_elements(By.CSS_SELECTOR, ".computed") and s.find_elements(
            By.CSS_SELECTOR, ".narrative"
        )
    assert browser.find_elements(By.CSS_SELECTOR, "[data-section=cell_populations] .computed table")
    assert "template" in _text(browser, "#report")  # the narrative's source is labelled

    _wait(browser, 120).until(
        lambda d: d.find_element(By.ID, "figures").get_attribute("data-loaded") is not None
    )
    loaded = browser.execute_script(
        "return [...document.querySelectorAll('#figures img')].map(i =>"
        " [i.alt, i.src.startsWith('blob:'), i.complete && i.naturalWidth > 0])"
    )
    assert loaded and all(blob and ok for _, blob, ok in loaded), loaded

    names = [
        b.get_attribute("data-artifact")
        for b in browser.find_elements(By.CSS_SELECTOR, "#artifact-list button")
    ]
    for expected in (
        "report.json",
        "report.md",
        "report.html",
        "spots.csv",
        "features.json",
        "analysis.json",
    ):
        assert expected in names, names
    assert any(n.startswith("figures/") and n.endswith(".png") for n in names), names
    # a download: the button fetches with the Bearer header and saves through a blob: URL
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    browser.find_element(
        By.CSS_SELECTOR, "#artifact-list button[data-artifact='spots.csv']"
    ).click()
    _wait(browser, 30).until(lambda d: (downloads / "spots.csv").is_file())
    assert (downloads / "spots.csv").read_text().startswith("barcode,")

    # ---- the review view: H&E in OpenSeadragon with layers, as a submitter
    _review_as_submitter(browser, stack, tenant_a, job_id, tmp_path)
    shot = _screenshot(browser, tmp_path / "console-report.png")
    assert shot.stat().st_size > 20_000

    # ---- sign and amend as a reviewer of the same lab; exports carry the status
    reviewer, _ = make_key(service_env, tenant_of(tenant_a["key"], service_env), "reviewer")
    _sign_as_reviewer(browser, stack, reviewer, job_id, downloads, tmp_path)
    print(f"screenshots: {sorted(str(p) for p in tmp_path.glob('*.png'))}")


def _review_as_submitter(
    browser: Any, base: str, tenant: dict[str, str], job_id: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    try:
        _wait(browser, 60).until(
            lambda d: d.find_element(By.ID, "tissue").get_attribute("data-ready") == "true"
        )
    except Exception:
        _screenshot(browser, tmp_path / "console-review-failed.png")
        raise AssertionError(
            _page_state(browser) + " note: " + _text(browser, "#viewer-note")
        ) from None
    layers = [
        b.get_attribute("data-layer")
        for b in browser.find_elements(By.CSS_SELECTOR, "#layers input[type=checkbox]")
    ]
    assert layers == ["domain", "cell_type", "lineage", "qc"], layers
    assert "H&E of the sample" in _text(browser, "#viewer-note")
    # a layer whose claim the analysis withheld is labelled so and off until asked for
    held = browser.execute_script("return ov.doc.layers.domain.withheld")
    if held:
        assert "(withheld)" in _text(browser, "label[for=layer-domain]")
        assert not browser.find_element(By.ID, "layer-domain").is_selected()
    _layer(browser, "domain", True)
    if held:
        assert "Withheld by the analysis" in _text(browser, "#legend [data-legend=domain]")
    # the viewer holds the H&E and one image per layer shown
    assert browser.execute_script(
        "return viewer.world.getItemCount() === 1 + Object.keys(ov.items).length"
    )

    # a layer toggled on and off; the opacity slider reaches every layer shown
    _layer(browser, "lineage", True)
    assert browser.find_elements(By.CSS_SELECTOR, "#legend [data-legend=lineage] li")
    browser.execute_script(
        "const r = document.getElementById('overlay-opacity'); r.value = 30;"
        " r.dispatchEvent(new Event('input'));"
    )
    opacities = browser.execute_script(
        "return Object.values(ov.items).map(i => Math.round(i.getOpacity() * 100))"
    )
    assert len(opacities) >= 2 and set(opacities) == {30}, opacities
    for name in ("lineage", "cell_type", "qc"):
        _layer(browser, name, False)
    assert browser.find_element(By.ID, "tissue").get_attribute("data-layers") == "domain"

    # clicking the tissue selects the domain of the spot under the pointer
    spot = browser.execute_script(
        "const d = ov.doc; const i = Math.floor(d.n_spots / 2);"
        "const p = ov.base.imageToViewerElementCoordinates(new OpenSeadragon.Point(d.x[i], d.y[i]));"
        "const r = document.getElementById('viewer').getBoundingClientRect();"
        "return {dx: p.x - r.width / 2, dy: p.y - r.height / 2,"
        " domain: d.layers.domain.categories[d.layers.domain.codes[i]]};"
    )
    browser.execute_script("document.getElementById('viewer').scrollIntoView({block: 'center'})")
    ActionChains(browser).move_to_element_with_offset(
        browser.find_element(By.ID, "viewer"), int(spot["dx"]), int(spot["dy"])
    ).click().perform()
    _wait(browser, 15).until(
        lambda d: (
            d.find_element(By.ID, "domain-detail").get_attribute("data-domain") == spot["domain"]
        )
    )
    # a domain from the legend, by keyboard: composition and findings
    button = browser.find_element(By.CSS_SELECTOR, "#legend .domain-button[data-domain='D1']")
    button.send_keys(" ")
    _wait(browser).until(
        lambda d: d.find_element(By.ID, "domain-detail").get_attribute("data-domain") == "D1"
    )
    detail = _text(browser, "#domain-detail")
    assert "Composition" in detail and "In the report" in detail and "%" in detail, detail
    assert browser.find_elements(By.CSS_SELECTOR, "#domain-detail .composition table tbody tr")

    # the claim check's marks in the narrative, as report.json has them
    with client(base, tenant["auth"]) as c:
        report = c.get(f"/v1/jobs/{job_id}/report").json()
    sentences = (report.get("claim_check") or {}).get("sentences") or []
    marks = browser.find_elements(By.CSS_SELECTOR, "#report .claim[data-verdict]")
    if sentences:
        assert browser.find_elements(By.ID, "claim-summary")
        assert marks, "the report has checked sentences but none is marked"
        verdicts = {m.get_attribute("data-verdict") for m in marks}
        assert verdicts <= {"supported", "unverifiable", "contradicted"}, verdicts

    # a submitter sees the status, not the sign button; exports are there
    assert _text(browser, "#signoff-status") == "preliminary"
    assert not browser.find_element(By.ID, "sign-form").is_displayed()
    assert browser.find_element(By.ID, "sign-not-allowed").is_displayed()
    assert {
        b.get_attribute("data-format")
        for b in browser.find_elements(By.CSS_SELECTOR, "#exports button")
    } >= {"pdf", "fhir", "hl7"}
    _axe(browser, "review view (submitter)")
    # the viewer and the overlays live within the page's Content-Security-Policy
    try:
        logs = browser.get_log("browser")
    except WebDriverException:
        logs = []
    csp = [m["message"] for m in logs if "Content Security Policy" in m["message"]]
    assert not csp, csp

    # the report beside the tissue at 1280 px and on a 1920 px reading-room screen
    for width in (1280, 1920):
        browser.set_window_size(width, 1080)
        tissue = browser.find_element(By.ID, "tissue").rect
        signoff = browser.find_element(By.ID, "signoff").rect
        assert tissue["x"] + tissue["width"] <= signoff["x"], (width, tissue, signoff)
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
        browser.save_screenshot(str(tmp_path / f"console-review-{width}.png"))


def _layer(browser: Any, name: str, on: bool) -> None:
    """Switch a layer of the review view on or off (by its checkbox) and wait for the viewer."""
    box = browser.find_element(By.ID, f"layer-{name}")
    if box.is_selected() != on:
        box.click()
    _wait(browser).until(
        lambda d: (
            (name in (d.find_element(By.ID, "tissue").get_attribute("data-layers") or "").split())
            == on
        )
    )


def _sign_as_reviewer(
    browser: Any, base: str, key: str, job_id: str, downloads: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    browser.find_element(By.ID, "sign-out").click()
    _sign_in(browser, base, key)
    assert _text(browser, "#key-role") == "reviewer"
    browser.get(f"{base}/#/jobs/{job_id}")
    _wait(browser, 60).until(lambda d: d.find_element(By.ID, "sign-form").is_displayed())
    assert _text(browser, "#signoff-status") == "preliminary"
    assert _text(browser, "#sign-button") == "Sign report final"
    _axe(browser, "review view (reviewer)")
    # every control of the review is reached with the Tab key alone
    from selenium.webdriver.common.keys import Keys

    _wait(browser, 60).until(
        lambda d: d.find_element(By.ID, "tissue").get_attribute("data-ready") == "true"
    )
    if not browser.find_element(By.ID, "layer-domain").is_selected():
        browser.find_element(By.ID, "layer-domain").send_keys(" ")  # the keyboard turns it on
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#legend .domain-button"))
    browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    reached: set[str] = set()
    for _ in range(120):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        reached.add(
            browser.execute_script(
                "const e = document.activeElement;"
                " return e.id || e.dataset.format || e.dataset.domain || e.dataset.artifact || e.tagName"
            )
        )
    want = {
        "zoom-in",
        "zoom-out",
        "zoom-home",
        "overlay-opacity",
        "layer-domain",
        "layer-qc",
        "qc-metric",
        "sign-reviewer",
        "sign-status",
        "sign-comment",
        "sign-button",
        "pdf",
        "fhir",
        "hl7",
    }
    assert want <= reached, want - reached
    assert "D1" in reached  # the domains, from the legend

    browser.find_element(By.ID, "sign-reviewer").send_keys("Dr A. Pathologist")
    browser.find_element(By.ID, "sign-button").click()
    _wait(browser, 30).until(lambda d: _text(d, "#signoff-status") == "final")
    assert "report final" in _text(browser, "#report-status-badge")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#signoff-history li[data-status]")) == 1

    # an amendment without a comment is refused in plain words; with one it is signed
    assert _text(browser, "#sign-button") == "Sign amendment"
    browser.find_element(By.ID, "sign-button").click()
    _wait(browser).until(lambda d: d.find_element(By.ID, "sign-error").is_displayed())
    assert "needs a comment" in _text(browser, "#sign-error")
    browser.find_element(By.ID, "sign-comment").send_keys(
        "Addendum: margins reviewed on the slide."
    )
    browser.find_element(By.ID, "sign-button").click()
    _wait(browser, 30).until(lambda d: _text(d, "#signoff-status") == "amended")
    history = _text(browser, "#signoff-history")
    assert "final" in history and "amended" in history and "margins reviewed" in history, history
    assert not browser.find_element(By.ID, "sign-error").is_displayed()
    _screenshot(browser, tmp_path / "console-signed-1280.png")

    # exports after signing carry the new status
    for fmt, name in (
        ("fhir", f"report-{job_id}.fhir.json"),
        ("hl7", f"report-{job_id}.hl7"),
        ("pdf", f"report-{job_id}.pdf"),
    ):
        browser.find_element(By.CSS_SELECTOR, f"#exports button[data-format={fmt}]").click()
        _wait(browser, 60).until(
            lambda d, n=name: (downloads / n).is_file() and (downloads / n).stat().st_size > 0
        )
    fhir = json.loads((downloads / f"report-{job_id}.fhir.json").read_text())
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "amended"
    segments = (downloads / f"report-{job_id}.hl7").read_text().replace("\n", "\r").split("\r")
    obr = next(seg.split("|") for seg in segments if seg.startswith("OBR|"))
    assert obr[25] == "C", obr  # C: corrected (amended)
    assert (downloads / f"report-{job_id}.pdf").read_bytes().startswith(b"%PDF")

    # a colleague's amendment (through the API) reaches the open page by itself
    with client(base, f"Bearer {key}") as c:
        r = c.post(
            f"/v1/jobs/{job_id}/report/sign",
            json={"reviewer": "Dr B. Colleague", "status": "amended", "comment": "second look"},
        )
        assert r.status_code == 201, r.text
    _wait(browser, 45).until(lambda d: "Dr B. Colleague" in _text(d, "#signoff-history"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#signoff-history li[data-status]")) == 3


def _insert_jobs(env: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
    import psycopg

    with psycopg.connect(
        env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    ) as conn:
        conn.cursor().executemany(
            "INSERT INTO jobs (id, tenant_id, upload_id, kind, external_sample_id, options, state,"
            " stage, progress, attempts, stage_attempts, max_attempts, transient_tries, timings,"
            " summary, report_status, created_at, updated_at) VALUES (%s, %s, %s, 'spatial', %s,"
            " '{}', %s, 'analyzing', 0.5, 1, 1, 3, 0, '{}', '{}', %s, %s, now())",
            # updated now: the reconciler re-sends queued jobs untouched for minutes, and these
            # rows must not become real work for the session's one analysis worker
            rows,
        )


def _cancel_inserted(env: dict[str, str], ids: list[uuid.UUID]) -> None:
    """The inserted queued and running rows are real jobs to the session's relay and workers
    (the reconciler hands them to the analysis queue): cancel them once the test is done, so
    the next tests' jobs do not wait behind them."""
    import psycopg

    with psycopg.connect(
        env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    ) as conn:
        conn.execute(
            "UPDATE jobs SET state = 'canceled', finished_at = now(), updated_at = now()"
            " WHERE id = ANY(%s) AND state IN ('queued', 'running')",
            (ids,),
        )


def test_job_list_filters_pages_and_live_rows(
    api: str,
    browser: Any,
    service_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """130 jobs of one lab: keyset pages forward and back, filters, and live updates of the
    rows on screen only (no reload of the page of jobs, no request for a row off screen or
    for a failed job)."""
    from core.synth import write_sample

    tenant = f"console-ui-{uuid.uuid4().hex[:6]}"
    key, _ = make_key(service_env, tenant)
    small = tmp_path / "small.h5ad"
    write_sample(small, n_spots=60, n_genes=200, seed=1)
    with client(api, f"Bearer {key}") as c:
        upload_id = uuid.UUID(upload(c, small.read_bytes(), "small.h5ad").json()["id"])
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    for i in range(130):
        # the newest 4 are running; then succeeded (some signed), failed, queued
        state = "running" if i >= 126 else ("succeeded", "failed", "queued")[i % 3]
        signed = ("final" if i % 2 else None) if state == "succeeded" else None
        rows.append(
            (
                uuid.uuid4(),
                tenant,
                upload_id,
                f"LIST-{i:03d}",
                state,
                signed,
                t0 + timedelta(hours=i),
            )
        )
    _insert_jobs(service_env, rows)
    request.addfinalizer(lambda: _cancel_inserted(service_env, [r[0] for r in rows]))
    newest = sorted(rows, key=lambda r: r[6], reverse=True)

    browser.set_window_size(1280, 900)
    _sign_in(browser, api, key)

    def ids() -> list[str]:
        return browser.execute_script(
            "return [...document.querySelectorAll('#jobs-table tbody tr')].map(r => r.dataset.job)"
        )

    _wait(browser).until(lambda d: len(ids()) == 50)
    assert ids() == [str(r[0]) for r in newest[:50]]
    browser.find_element(By.ID, "page-next").click()
    _wait(browser).until(lambda d: ids() == [str(r[0]) for r in newest[50:100]])
    browser.find_element(By.ID, "page-next").click()
    _wait(browser).until(lambda d: ids() == [str(r[0]) for r in newest[100:]])
    assert not browser.find_element(By.ID, "page-next").is_enabled()
    browser.find_element(By.ID, "page-prev").click()
    _wait(browser).until(lambda d: ids() == [str(r[0]) for r in newest[50:100]])

    # filters: report status, then sample id, then oldest first within dates
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "f-report")).select_by_value("final")
    browser.find_element(By.ID, "apply-filters").click()
    want = [str(r[0]) for r in newest if r[5] == "final"]
    _wait(browser).until(lambda d: ids() == want[:50])
    assert _text(browser, "#page-info").startswith("page 1")
    browser.find_element(By.ID, "clear-filters").click()
    browser.find_element(By.ID, "f-sample").send_keys("LIST-007")
    browser.find_element(By.ID, "apply-filters").click()
    _wait(browser).until(lambda d: ids() == [str(rows[7][0])])
    browser.find_element(By.ID, "clear-filters").click()
    Select(browser.find_element(By.ID, "f-sort")).select_by_value("created_at")
    browser.execute_script(
        "document.getElementById('f-from').value = '2026-03-02';"
        "document.getElementById('f-to').value = '2026-03-02';"
    )
    browser.find_element(By.ID, "apply-filters").click()
    day = [r for r in rows if r[6].date().isoformat() == "2026-03-02"]
    # the day is local to the browser (UTC in the test machine's chromium unless TZ says else)
    _wait(browser).until(lambda d: len(ids()) in (len(day), len(day) - 1, len(day) + 1))
    assert ids() == sorted(ids(), key=lambda i: next(r[6] for r in rows if str(r[0]) == i))
    _axe(browser, "job list with filters")

    # live rows: back to page 1; a running job on screen finishes; the row follows
    browser.find_element(By.ID, "clear-filters").click()
    _wait(browser).until(lambda d: ids() == [str(r[0]) for r in newest[:50]])
    browser.execute_script(
        "performance.clearResourceTimings(); performance.setResourceTimingBufferSize(5000)"
    )
    time.sleep(2)
    import psycopg

    with psycopg.connect(
        service_env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    ) as conn:
        conn.execute(
            "UPDATE jobs SET state = 'succeeded', stage = 'reporting', progress = 1,"
            " finished_at = now() WHERE id = %s",
            (newest[0][0],),
        )
    row = f"tr[data-job='{newest[0][0]}']"
    _wait(browser, 40).until(lambda d: _text(d, f"{row} [data-field=state]") == "succeeded")
    assert _text(browser, f"{row} [data-field=report]") == "preliminary"
    time.sleep(1)
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    visible = set(
        browser.execute_script(
            "return [...document.querySelectorAll('#jobs-table tbody tr')].filter(r => {"
            " const b = r.getBoundingClientRect(); return b.bottom > 0 && b.top < innerHeight;"
            "}).map(r => r.dataset.job)"
        )
    )
    failed = {str(r[0]) for r in rows if r[4] == "failed"}
    job_gets = [u.split("/v1/jobs/")[1].split("?")[0] for u in urls if "/v1/jobs/" in u]
    lists = [u for u in urls if "/v1/jobs?" in u]
    assert job_gets, urls
    assert set(job_gets) <= visible, (set(job_gets) - visible, visible)
    assert not set(job_gets) & failed
    assert all("limit=1" in u for u in lists), lists  # only the "new jobs?" check, never a reload

    # a job newer than the page: offered, not pushed in
    newer = (uuid.uuid4(), tenant, upload_id, "LIST-NEW", "queued", None, t0 + timedelta(days=30))
    _insert_jobs(service_env, [newer])
    browser.execute_async_script("watcher.checkNew().then(arguments[arguments.length - 1])")
    assert browser.find_element(By.ID, "new-jobs").is_displayed()
    assert ids()[0] == str(newest[0][0])
    browser.find_element(By.ID, "show-new-jobs").click()
    _wait(browser).until(lambda d: ids()[0] == str(newer[0]))
    _screenshot(browser, tmp_path / "console-jobs-1920.png", 1920)


def test_upload_refusals_in_plain_words(
    api: str, browser: Any, tenant_b: dict[str, str], service_env: dict[str, str], tmp_path: Path
) -> None:
    """Refused before a byte is sent (too large for the server's limit, an option out of the
    API's own bounds, a format the API does not read), and after (a damaged file: the API's
    problem+json in words, its code beside them)."""
    limit = int(service_env["MGS_MAX_UPLOAD_BYTES"])
    big = tmp_path / "big.h5ad"
    with big.open("wb") as fh:  # sparse: costs no disk
        fh.truncate(limit + 1)
    _sign_in(browser, api, tenant_b["key"])
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#option-fields [data-option]"))
    browser.execute_script("performance.clearResourceTimings()")

    def refused(path: Path, want: str) -> str:
        browser.find_element(By.ID, "sample-file").send_keys(str(path))
        browser.find_element(By.ID, "upload-button").click()
        try:
            _wait(browser, 60).until(lambda d: want in _text(d, "#upload-error"))
        except Exception:
            raise AssertionError(_page_state(browser)) from None
        return _text(browser, "#upload-error")

    said = refused(big, "larger than this server accepts")
    assert "upload_too_large" in said and "limit" in said, said

    small = tmp_path / "small.h5ad"
    small.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 512)  # HDF5's signature, then nothing
    browser.find_element(By.ID, "more-options").click()
    browser.find_element(By.ID, "opt-resolution").send_keys("5")
    said = refused(small, "resolution: at most 2")
    browser.find_element(By.ID, "opt-resolution").clear()

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    refused(notes, "not a file the service reads")
    sent = browser.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/uploads')).length"
    )
    assert sent == 0  # nothing above reached the server

    # the server's refusal, in words
    said = refused(small, "damaged or incomplete")
    assert "corrupt_file" in said, said
    _axe(browser, "upload form with an error")
