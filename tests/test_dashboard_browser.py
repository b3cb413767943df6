"""Headless Chromium drives the dashboard and opens a static report with the network cut off.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (skipped, with the reason, when they
are not installed) and the Python packages ``selenium`` and ``dash``. Set
``GENZ_UPDATE_SCREENSHOTS=1`` to refresh ``docs/screenshots/*.png`` for the README.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)")
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1700", "--proxy-server=http://127.0.0.1:9",  # nothing outside localhost loads
              "--proxy-bypass-list=127.0.0.1;localhost"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory):
    from genz.sweep import sweep
    from interfaces.reports.formats import write_table

    results = tmp_path_factory.mktemp("results") / "sweep.csv"
    write_table(sweep(["llama-3-8b"], ["h100", "h200"], batch=[1, 8, 64], prompt=[512, 2048]).frame, results)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "interfaces.dashboard", "--host", "127.0.0.1", "--port", str(port),
                             "--results", str(results)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("dashboard did not answer within 60 s")
            time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _text(driver, id_: str) -> str:
    from selenium.webdriver.common.by import By

    els = driver.find_elements(By.ID, id_)
    return els[0].text if els else ""


def _wait_change(driver, id_: str, old: str, timeout: float = 30) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: _text(d, id_) not in ("", old))
    return _text(driver, id_)


def _plot_points(driver, graph_id: str) -> int:
    """Markers drawn in a dcc.Graph (SVG paths of class 'point')."""
    return driver.execute_script("return document.querySelectorAll(arguments[0] + ' .scatterlayer .point').length",
                                 f"#{graph_id}")


def test_dashboard_updates_when_controls_change(browser, dashboard_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(dashboard_url)
    tpot = _wait_change(browser, "num-a-tpot", "")
    thr = _text(browser, "num-a-throughput")
    assert "ms" in tpot and "tok/s" in thr
    WebDriverWait(browser, 30).until(lambda d: _plot_points(d, "roofline-a") > 0)

    batch = browser.find_element(By.ID, "batch")
    batch.send_keys(Keys.CONTROL, "a")
    batch.send_keys("64", Keys.ENTER)
    tpot_64 = _wait_change(browser, "num-a-tpot", tpot)
    thr_64 = _text(browser, "num-a-throughput")
    assert thr_64 != thr
    assert float(tpot_64.split()[0]) > float(tpot.split()[0])  # a bigger batch takes longer per step

    browser.find_element(By.ID, "hardware-a").click()  # choose hardware A by typing, as a user would
    search = WebDriverWait(browser, 10).until(  # Dash 4 opens a search box; Dash 2 has an input inside
        lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "input.dash-dropdown-search, #hardware-a input")
                        if e.is_displayed()), None))
    search.send_keys("b200")
    search.send_keys(Keys.ENTER)
    tpot_b200 = _wait_change(browser, "num-a-tpot", tpot_64)
    assert "b200" in browser.find_element(By.ID, "hardware-a").text
    assert float(tpot_b200.split()[0]) < float(tpot_64.split()[0])  # B200 streams weights faster than H200
    assert _plot_points(browser, "roofline-b") > 0  # comparison with hardware B is drawn

    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(dashboard_url.rstrip("/")) for r in resources)  # served locally
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    if os.environ.get("GENZ_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "dashboard.png", SCREENSHOTS / "dashboard.png")


def test_dashboard_opens_a_results_file(browser, dashboard_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(dashboard_url)
    WebDriverWait(browser, 30).until(lambda d: _text(d, "num-a-tpot"))
    tab = next(t for t in browser.find_elements(By.CSS_SELECTOR, ".tab, [role=tab]") if "Results file" in t.text)
    tab.click()
    WebDriverWait(browser, 30).until(lambda d: "Sweep" in _text(d, "results-view"))
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.querySelectorAll('#results-fig-1 .scatterlayer .point').length") > 0)  # Pareto front
    assert "12 configurations" in _text(browser, "results-view")


def test_static_report_renders_offline(browser, tmp_path):
    import genz
    from interfaces.reports import build_report, write_html

    rep = build_report("predict", {"prediction": genz.predict("mixtral-8x7b", "h200", batch=16, tp=2, ep=2).to_dict()})
    page = write_html(rep, tmp_path / "report.html")
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions",
                            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    try:
        browser.get(page.as_uri())
        count = ("return Array.from(document.querySelectorAll('.js-plotly-plot'))"
                 ".map(p => p.querySelectorAll('.main-svg').length)")
        deadline = time.time() + 30  # plots draw after the load event on a busy machine: wait, do not race
        plots = browser.execute_script(count)
        while not (len(plots) == len(rep.sections) and all(n > 0 for n in plots)) and time.time() < deadline:
            time.sleep(0.2)
            plots = browser.execute_script(count)
        assert len(plots) == len(rep.sections) and all(n > 0 for n in plots)
        assert browser.execute_script("return typeof window.Plotly") == "object"
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        if os.environ.get("GENZ_UPDATE_SCREENSHOTS"):
            browser.set_window_size(1300, 2600)
            browser.save_screenshot(str(SCREENSHOTS / "report-predict.png"))
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions",
                                {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
