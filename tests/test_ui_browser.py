"""The clinician's path through the real app in headless Chromium (Debian's, never downloaded).

Log in, load a sample case, run it, see the diagnosis and the gate chart, give feedback, find
the case in the audit tab, verify the chain, and see a malformed upload rejected in plain words.
Screenshots go to artifacts/screenshots/ (CI keeps them); timings to artifacts/browser_timings.json.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app_server import PASSWORD, USER
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="module")
def page(running_app: object) -> Iterator[object]:
    if not shutil.which("chromium") and not Path(CHROMIUM).exists():
        skip_or_fail("Debian's chromium is not installed (scripts/test-services.sh installs it)")
    from playwright.sync_api import sync_playwright

    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(running_app.url)  # type: ignore[attr-defined]
        yield pg
        browser.close()


def shot(pg: object, name: str) -> None:
    pg.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_clinician_workflow(page: object, running_app: object) -> None:
    pg = page
    timings: dict[str, float] = {"app_start_s": round(running_app.startup_s, 2)}  # type: ignore[attr-defined]

    # Wrong password first: refused (and audited, checked in the audit tab below).
    pg.fill("input[type=text]", USER)
    pg.fill("input[type=password]", "not the password")
    pg.get_by_role("button", name="Login").click()
    pg.wait_for_timeout(800)
    assert pg.locator("#run-button").count() == 0
    pg.fill("input[type=text]", USER)
    pg.fill("input[type=password]", PASSWORD)
    pg.get_by_role("button", name="Login").click()
    pg.wait_for_selector("#run-button")
    shot(pg, "01-new-case")

    # Pick a sample case; the form fills with its report.
    pg.get_by_label("Sample case").click()
    pg.get_by_role("option").first.click()
    pg.wait_for_function("document.querySelector('textarea') && document.querySelector('textarea').value.length > 0")

    t0 = time.perf_counter()
    pg.click("#run-button")
    pg.wait_for_function("document.querySelector('#diagnosis').innerText.includes('%')")
    timings["run_to_diagnosis_s"] = round(time.perf_counter() - t0, 3)
    pg.wait_for_selector("#gate-plot .js-plotly-plot, #gate-plot svg")
    text = pg.inner_text("#diagnosis")
    assert "Decided by" in text
    pg.wait_for_timeout(1500)  # heatmaps and highlights fill in after the diagnosis
    shot(pg, "02-result")

    # Feedback against this prediction.
    pg.locator("#feedback-verdict").get_by_text("agree", exact=True).click()
    pg.click("#feedback-button")
    pg.wait_for_function("document.querySelector('#feedback-msg').innerText.includes('Feedback saved')")

    # Audit tab: the prediction, the feedback and the failed login are there; the chain verifies.
    pg.get_by_role("tab", name="Audit").click()
    pg.click("#audit-search")
    pg.wait_for_function("document.querySelector('#audit-table').innerText.includes('prediction.made')")
    table = pg.inner_text("#audit-table")
    assert "feedback.recorded" in table and "login.failed" in table and USER in table
    pg.click("#verify-button")
    pg.wait_for_function("document.querySelector('#verify-msg').innerText.includes('Chain intact')")
    shot(pg, "03-audit")

    # A malformed upload: a PNG renamed .dcm is rejected inline, without a traceback.
    pg.get_by_role("tab", name="New case").click()
    bad = ARTIFACTS / "not-a-dicom.dcm"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    pg.locator("input[type=file]").first.set_input_files(str(bad))
    pg.wait_for_timeout(800)
    pg.click("#run-button")
    pg.wait_for_selector("text=/not a DICOM|not DICOM/i")
    body = pg.inner_text("body")
    assert "Traceback" not in body
    shot(pg, "04-rejected-upload")

    (ARTIFACTS / "browser_timings.json").write_text(json.dumps(timings, indent=2))
    print("browser timings:", timings)
