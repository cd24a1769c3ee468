"""The README's promises about the demo: the client loop runs as written, a newcomer labels the
demo project with the keyboard at ``/`` (no token on the local server), the dashboard shows the
demo's rounds. One real ``labelloop demo`` data directory served by a real server process."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from api.client import Client
from tests.server import ROOT, Server
from tests.ui.conftest import screenshot
from tests.ui.test_label_page import current_item, keys, state, wait_for

PROJECT = "youtube-spam"


def readme_client_loop() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The Python client", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def looks_like_spam(text: str) -> bool:
    return any(w in text.lower() for w in ("http", "subscribe", "check out", "channel"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo") / "data"
    proc = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--no-serve", "--data-dir",
                           str(data)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False, env={**os.environ, "LABELLOOP_EXECUTOR": "inprocess"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "http://127.0.0.1:8000/ " in proc.stderr  # the page is what the demo points to
    srv = Server(data).start()
    yield srv
    srv.stop()


def test_the_readme_client_loop_runs_as_written(demo):
    code = readme_client_loop()
    assert len(code.strip().splitlines()) <= 12
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace("http://127.0.0.1:8000", demo.url), "README.md", "exec"), {})  # noqa: S102 -- the README's own code
    assert out.getvalue().strip() == "30 labels so far"


def test_a_newcomer_labels_the_demo_with_the_keyboard(demo, browser):
    browser.get(demo.url + "/")
    wait_for(browser, lambda d: state(d) == "signin")
    browser.find_element(By.ID, "name").send_keys("newcomer", Keys.ENTER)
    wait_for(browser, lambda d: state(d) == "projects")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "a.label-link"))[0].click()
    expected, seen = {}, []
    for _ in range(10):
        item_id, text = wait_for(browser, lambda d: (got := current_item(d)) and got[0] not in seen and got)
        seen.append(item_id)
        spam = looks_like_spam(text)
        keys(browser, "2" if spam else "1")
        expected[item_id] = int(spam)
    wait_for(browser, lambda d: state(d) == "review")
    screenshot(browser, "demo-review")
    keys(browser, Keys.ENTER)
    wait_for(browser, lambda d: (got := current_item(d)) and got[0] not in seen)
    screenshot(browser, "demo-labeling")
    got = [a for a in httpx.get(f"{demo.url}/projects/{PROJECT}/annotations").json()
           if a["annotator"] == "newcomer"]
    assert {a["item_id"]: a["label"] for a in got} == expected


def test_the_dashboard_shows_the_demo_rounds(demo, browser):
    with Client(demo.url) as c:  # 40 labels by now; let background rounds end, then one more
        deadline = time.monotonic() + 300
        while any(j["status"] in ("queued", "running") for j in
                  c._call("GET", f"/projects/{PROJECT}/jobs")) and time.monotonic() < deadline:
            time.sleep(0.5)
        c.run_round(PROJECT)
        rounds = c.rounds(PROJECT)
    assert len(rounds) >= 3 and rounds[-1]["n_labels"] == 40
    measured = any((r["metrics"].get("end_model") or {}).get("accuracy") is not None for r in rounds)
    browser.get(demo.url + "/")
    wait_for(browser, lambda d: state(d) == "signin")
    browser.find_element(By.ID, "name").send_keys("engineer", Keys.ENTER)
    wait_for(browser, lambda d: state(d) == "projects")
    browser.find_element(By.CSS_SELECTOR, "a.dashboard-link").click()
    wait_for(browser, lambda d: state(d) == "dashboard")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#rounds tr")) == len(rounds) + 1
    points = browser.find_elements(By.CSS_SELECTOR, "#curve svg circle.point")
    assert bool(points) == measured, "the curve plots exactly the rounds with evaluation labels"
    lfs = browser.find_elements(By.CSS_SELECTOR, "#lfs tr")
    assert len(lfs) > 5
    screenshot(browser, "demo-dashboard")
