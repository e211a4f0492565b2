"""The monitor in a real browser: Debian's headless Chromium, driven by Selenium.

A real redis-server, the app on a real server thread on 127.0.0.1, a real worker. The user
watches the overview change without reloading, sees a failure, requeues it through the
confirmation dialog, and finds it back in its queue. Screenshots go to results/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

import labqueue
from labqueue.keys import Keys
from labqueue.web import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = Path(__file__).resolve().parents[1] / "results" / "screenshots"
K = Keys()

pytestmark = pytest.mark.slow


@labqueue.job("WebE2E::Ok")
class Ok(labqueue.Job):
    def perform(self) -> None:
        time.sleep(float(self.args.get("seconds", 0.05)))


@labqueue.job("WebE2E::Boom")
class Boom(labqueue.Job):
    def perform(self) -> None:
        raise ValueError(f"card declined for order {self.args['order_id']}")


def _need_browser() -> Any:
    """Selenium's webdriver, or a skip (a failure in CI, which installs chromium)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        why = f"browser test needs {', '.join(missing)}: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test; {why} (.ci/run does)")
        pytest.skip(why)
    return webdriver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = _need_browser()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1360,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def monitor_url(real: Any) -> Iterator[str]:
    """The monitor on a real server thread, on a free loopback port."""
    app = create_app(real, {"LABQUEUE_REFRESH_MS": 1000})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="monitor", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def wait_for(driver: Any, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def probe(_driver: Any) -> Any:
        try:
            return check()
        except WebDriverException:
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(probe, f"waiting for {what}")


def depth(driver: Any, queue: str) -> str | None:
    cells = driver.find_elements("css selector", f'tr[data-queue="{queue}"] td.depth')
    return cells[0].text if cells else None


def age(driver: Any, queue: str) -> str | None:
    cells = driver.find_elements("css selector", f'tr[data-queue="{queue}"] td.age')
    return cells[0].text if cells else None


def text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element("id", element_id).text)


def shot(driver: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def test_watch_fail_requeue_in_the_browser(browser: Any, monitor_url: str, real: Any) -> None:
    from selenium.common.exceptions import TimeoutException

    d = browser
    d.get(monitor_url + "/")
    wait_for(
        d,
        "the first refresh",
        lambda: d.find_element("id", "overview").get_attribute("data-updated"),
    )
    assert depth(d, "checkout") is None
    d.execute_script("window.__notReloaded = true;")

    # jobs arrive: the depth shows up and grows, with no reload
    email, checkout = labqueue.Queue("email", real), labqueue.Queue("checkout", real)
    email.enqueue_many(Ok, [{"seconds": 0.1} for _ in range(6)])
    checkout.enqueue_many(Ok, [{"seconds": 0.3} for _ in range(12)])
    wait_for(d, "checkout's depth 12", lambda: depth(d, "checkout") == "12")
    labqueue.Queue("erp", real).enqueue_many(Ok, [{"seconds": 0.05} for _ in range(4)])
    boom_id = checkout.enqueue(Boom, order_id=1042)
    wait_for(d, "checkout's depth 13", lambda: depth(d, "checkout") == "13")
    wait_for(d, "the queued total", lambda: text_of(d, "stat-queued") == "23")
    # the oldest waiting job's age beside each depth, growing while nobody takes the jobs
    first = float(wait_for(d, "checkout's age", lambda: age(d, "checkout")).split()[0])
    wait_for(d, "the age to grow", lambda: float(age(d, "checkout").split()[0]) > first)
    shot(d, "monitor-overview-backlog.png")  # notebook 6 shows a copy (notebooks/img/)
    assert d.execute_script("return window.__notReloaded === true;"), "the page reloaded"

    # a worker drains the queues; one job fails; the overview follows along
    worker = labqueue.Worker(["checkout", "email"], real, heartbeat_interval=0.5)
    runner = threading.Thread(target=worker.work, kwargs={"burst": True}, daemon=True)
    runner.start()
    try:  # mid-drain, for the picture (the job may all be done already on a slow machine)
        wait_for(d, "a busy worker", lambda: text_of(d, "stat-busy") == "1", timeout=10)
        wait_for(d, "checkout draining", lambda: int(depth(d, "checkout") or 13) < 10, 10)
        shot(d, "monitor-overview-busy.png")
    except TimeoutException:
        pass
    finally:
        runner.join(120)
    assert not runner.is_alive()
    wait_for(d, "checkout drained", lambda: depth(d, "checkout") == "0")
    wait_for(d, "the failure counted", lambda: text_of(d, "stat-failed") == "1")
    wait_for(d, "the Failed badge", lambda: text_of(d, "nav-failed") == "1")
    # 18 ran, 1 failed: Resque counts the failed one as processed too
    wait_for(d, "the processed total", lambda: text_of(d, "stat-processed") == "19")
    assert depth(d, "erp") == "4" and depth(d, "email") == "0"
    assert d.execute_script("return window.__notReloaded === true;"), "the page reloaded"
    shot(d, "monitor-overview.png")

    # Failed shows the exception; requeue asks first, then the failure is gone
    d.find_element("css selector", 'header nav a[href="/failed"]').click()
    wait_for(d, "the Failed page", lambda: "Failed jobs" in d.find_element("tag name", "h1").text)
    card = d.find_element("css selector", "li.failure")
    assert card.find_element("css selector", ".exception").text == "ValueError"
    assert card.find_element("css selector", ".error").text == "card declined for order 1042"
    card.find_element("tag name", "summary").click()
    wait_for(
        d,
        "the backtrace",
        lambda: "perform" in card.find_element("css selector", "pre.backtrace").text,
    )
    shot(d, "monitor-failed.png")
    card.find_element("xpath", ".//button[normalize-space()='Requeue']").click()
    dialog = wait_for(
        d,
        "the confirmation",
        lambda: (
            d.find_element("id", "confirm-dialog").is_displayed()
            and d.find_element("id", "confirm-dialog")
        ),
    )
    assert "Requeue this WebE2E::Boom job?" in dialog.text
    assert real.llen(K.failed) == 1, "nothing happens before the user confirms"
    shot(d, "monitor-confirm.png")
    d.find_element("id", "confirm-ok").click()
    wait_for(d, "the flash", lambda: "Requeued 1 job." in d.find_element("tag name", "main").text)
    assert "No failed jobs" in d.find_element("tag name", "main").text
    assert real.llen(K.failed) == 0

    # ... and back in its queue, where the queue page shows it
    d.get(monitor_url + "/queues/checkout")
    row = d.find_element("css selector", "table.table tbody tr")
    assert "WebE2E::Boom" in row.text and '{"order_id":1042}' in row.text
    assert boom_id.startswith(row.find_element("css selector", "a.mono").text.rstrip("…"))
    assert labqueue.get_status(real, boom_id).status is labqueue.JobStatus.WAITING
    shot(d, "monitor-queue.png")


def test_every_page_with_resque_records_renders_cleanly(
    browser: Any, monitor_url: str, real: Any
) -> None:
    """Ruby Resque's records, a live labqueue worker, delayed jobs: no console error
    (a CSP violation or a script error would show there) on any page."""
    from test_web_pages import RUBY_WORKER, write_delayed, write_ruby_layout

    from labqueue import timefmt

    write_ruby_layout(real)
    real.sadd(K.workers, "shop-1:4242:email,erp")
    real.hset(K.heartbeat, "shop-1:4242:email,erp", timefmt.heartbeat())
    real.set(K.worker_started("shop-1:4242:email,erp"), timefmt.started(time.time() - 3600))
    real.set(K.stat("processed", "shop-1:4242:email,erp"), 1287)
    now = int(time.time())
    write_delayed(real, now + 90, "email", "a" * 32, "Store::Jobs::SendReminder")
    write_delayed(real, now + 3600, "erp", None, "Store::Jobs::SyncStock")
    job_id = labqueue.Queue("email", real).enqueue("Store\\Jobs\\SendReceiptEmail", order_id=7)
    pages = {
        "/": "Overview",
        "/queues/default": "default",
        "/queues/high": "high",
        "/workers": "Workers",
        "/failed": "Failed jobs",
        "/delayed": "Delayed jobs",
        f"/jobs/{job_id}": job_id,
    }
    for path, heading in pages.items():
        browser.get(monitor_url + path)
        assert heading in browser.find_element("tag name", "h1").text, path
        if path == "/":
            wait_for(
                browser,
                "a refresh",
                lambda: browser.find_element("id", "overview").get_attribute("data-updated"),
            )
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], (path, errors)
        if path in ("/workers", "/delayed", "/queues/default") or path.startswith("/jobs/"):
            shot(browser, "monitor-" + path.strip("/").split("/")[0] + ".png")
    browser.get(monitor_url + "/workers")
    stale = browser.find_element("css selector", "tr.stale")
    assert RUBY_WORKER.split(":")[0] in stale.text and "stale" in stale.text
