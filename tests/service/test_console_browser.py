"""The lab console in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): sign in with a key, upload the real Visium sample (.tar.gz) with the progress
bar, watch the job in the list, open it, and check the report (sections, computed tables
apart from the narrative, figures through blob: URLs, downloads). Screenshots go to the
test's tmp dir.

The API runs as in its slim image: the scientific stack and torch are made unimportable
in its process (tests/deploy/api_image.py). Workers and relay are the real
processes the e2e tests start; the report is written by the template backend.

Skips when chromium/chromedriver or selenium are missing (CI: apt-get install -y chromium
chromium-driver) or when ../shared/data is absent.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.api_image import blocker_dir
from tests.service.conftest import ROOT, start_api, start_relay, start_worker
from tests.service.helpers import VISIUM_DIR, spaceranger_targz

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


@pytest.fixture(scope="module")
def stack(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[str]:
    """API (as in its image), relay, CPU worker and report worker (template backend)."""
    logs = tmp_path_factory.mktemp("console-logs")
    env = {**service_env, "MGS_REPORT_BACKEND": "template"}
    api_env = {**env, "PYTHONPATH": f"{blocker_dir(logs)}:{ROOT}",
               "MGS_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024)}
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
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,2000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER,
                                      log_output=str(tmp_path / "chromedriver.log"))
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
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)
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


def _screenshot(driver: Any, path: Path) -> Path:
    # grow the window to the page so the whole report is in one picture
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 100, 12000))
    driver.save_screenshot(str(path))
    return path


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
    assert "3,400" in html and '<mark class="unverified" title="matches no computed value">3,400' not in html
    # the ordinal "1." is never a number of the narrative
    assert html.startswith("1. About"), html


def test_upload_watch_and_open_the_report(
    stack: str, browser: Any, tenant_a: dict[str, str], tmp_path: Path
) -> None:
    sample = tmp_path / "visium_10x_v1_subset.tar.gz"
    sample.write_bytes(spaceranger_targz())

    browser.get(stack + "/")
    _wait(browser).until(lambda d: d.find_element(By.ID, "api-key").is_displayed())
    browser.find_element(By.ID, "api-key").send_keys(tenant_a["key"])
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser).until(lambda d: d.find_element(By.ID, "jobs-view").is_displayed())
    assert browser.execute_script("return sessionStorage.getItem('mgs_api_key')") == tenant_a["key"]

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
    assert ids[:7] == ["specimen_and_qc", "tissue_architecture", "cell_populations",
                       "spatial_organisation", "morphology", "uncertainty", "follow_up"], ids
    for s in sections[:7]:
        # computed tables and the narrative, apart
        assert s.find_elements(By.CSS_SELECTOR, ".computed") and s.find_elements(
            By.CSS_SELECTOR, ".narrative")
    assert browser.find_elements(By.CSS_SELECTOR, "[data-section=cell_populations] .computed table")
    assert "template" in _text(browser, "#report")  # the narrative's source is labelled

    _wait(browser, 120).until(
        lambda d: d.find_element(By.ID, "figures").get_attribute("data-loaded") is not None)
    loaded = browser.execute_script(
        "return [...document.querySelectorAll('#figures img')].map(i =>"
        " [i.alt, i.src.startsWith('blob:'), i.complete && i.naturalWidth > 0])")
    assert loaded and all(blob and ok for _, blob, ok in loaded), loaded

    names = [b.get_attribute("data-artifact")
             for b in browser.find_elements(By.CSS_SELECTOR, "#artifact-list button")]
    for expected in ("report.json", "report.md", "report.html", "spots.csv", "features.json",
                     "analysis.json"):
        assert expected in names, names
    assert any(n.startswith("figures/") and n.endswith(".png") for n in names), names
    # a download: the button fetches with the Bearer header and saves through a blob: URL
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(downloads)})
    browser.find_element(By.CSS_SELECTOR, "#artifact-list button[data-artifact='spots.csv']").click()
    _wait(browser, 30).until(lambda d: (downloads / "spots.csv").is_file())
    assert (downloads / "spots.csv").read_text().startswith("barcode,")

    shot = _screenshot(browser, tmp_path / "console-report.png")
    assert shot.stat().st_size > 20_000
    print(f"screenshots: {tmp_path / 'console-jobs.png'} {shot}")
