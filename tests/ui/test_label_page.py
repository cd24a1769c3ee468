"""The labeling page and the dashboard in a real headless Chromium against a real server: a
person signs in with a token, labels with the keyboard (with an undo), skips one, flags one with
a comment, and the store holds exactly those answers; leaving the page releases the lease; item
HTML renders as text; the dashboard draws its plots after rounds."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from api.client import Client
from tests.lf_sources import GREAT_AWFUL_LFS
from tests.server import Server
from tests.ui.conftest import screenshot

ALICE, ENG, ADMIN = "alice-token-0123456789", "eng-token-0123456789", "admin-token-0123456789"
CLASSES = [{"name": "neg", "description": "an unhappy or neutral comment"},
           {"name": "pos", "description": "a comment that praises"}]
HTML_TEXT = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b> & co'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    tokens = root / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": ALICE, "name": "alice", "role": "annotator"},
        {"token": ENG, "name": "eng", "role": "engineer"},
        {"token": ADMIN, "name": "adm", "role": "admin"}]))
    srv = Server(root / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens)}).start()
    yield srv
    srv.stop()


def state(driver) -> str | None:
    return driver.execute_script("return document.body.dataset.state || null")


def wait_for(driver, predicate, timeout: float = 30):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: predicate(d))


def keys(driver, *chars: str) -> None:
    ActionChains(driver).send_keys(*chars).perform()


def sign_in(driver, url: str, token: str) -> None:
    driver.get(url + "/")
    wait_for(driver, lambda d: state(d) == "signin")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "signin-button").click()
    wait_for(driver, lambda d: state(d) == "projects")


def current_item(driver) -> tuple[str, str] | None:
    """(item id, text) of the item on screen, read in one script (the page re-renders between
    calls), or None unless an item waits for an answer."""
    got = driver.execute_script(
        "const it = document.getElementById('item'), t = document.getElementById('item-text');"
        "return document.body.dataset.state === 'ready' && it && t"
        " ? [it.dataset.itemId, t.textContent] : null")
    return tuple(got) if got else None


def test_a_person_labels_a_batch_with_the_keyboard(server, browser):
    with Client(server.url, token=ADMIN) as c:
        c.create_project("ui", CLASSES, guidelines="Praise is pos; everything else is neg.",
                         settings={"batch_size": 12, "eval_fraction": 0.0, "retrain_every": 1000})
        c.ingest("ui", [{"id": f"u{k}", "text": f"{'great' if k % 3 == 0 else 'meh'} comment {k}",
                         "features": {"length": float(k)}} for k in range(14)])
    sign_in(browser, server.url, ALICE)
    screenshot(browser, "projects")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "a.label-link"))[0].click()

    expected: dict[str, tuple[str, int | None, str]] = {}
    seen: list[str] = []
    for k in range(12):
        item_id, text = wait_for(browser, lambda d: (got := current_item(d)) and got[0] not in seen and got)
        seen.append(item_id)
        assert browser.find_element(By.ID, "why").text.startswith("Why this item:")
        label = 1 if text.startswith("great") else 0
        if k == 3:
            keys(browser, "s")
            expected[item_id] = ("skip", None, "")
        elif k == 7:
            keys(browser, "f")
            wait_for(browser, lambda d: d.find_elements(By.ID, "flag-comment"))
            keys(browser, "two comments in one", Keys.ENTER)
            expected[item_id] = ("flag", None, "two comments in one")
        elif k == 5:  # a wrong key, undone
            keys(browser, "2" if label == 0 else "1")
            wait_for(browser, lambda d, i=item_id: (got := current_item(d)) is None or got[0] != i)
            keys(browser, "u")
            wait_for(browser, lambda d, i=item_id: (got := current_item(d)) and got[0] == i)
            keys(browser, str(label + 1))
            expected[item_id] = ("label", label, "")
        else:
            if k == 1:
                screenshot(browser, "labeling")
                page = browser.find_element(By.ID, "view").text
                assert "an unhappy or neutral comment" in page and "Guidelines (version 1)" in page
                assert browser.find_element(By.ID, "features").text.count("length") == 1
            keys(browser, str(label + 1))
            expected[item_id] = ("label", label, "")
    wait_for(browser, lambda d: state(d) == "review")
    screenshot(browser, "batch-review")
    keys(browser, Keys.ENTER)
    # the next batch: the two items left
    wait_for(browser, lambda d: (got := current_item(d)) and got[0] not in seen)
    assert browser.find_element(By.ID, "labeled-today").text == "10"

    got = httpx.get(f"{server.url}/projects/ui/annotations",
                    headers={"authorization": f"Bearer {ENG}"}).json()
    assert {a["item_id"]: (a["kind"], a["label"], a["comment"]) for a in got} == expected
    assert len(got) == 12 and {a["annotator"] for a in got} == {"alice"}
    assert all(a["idempotency_key"] and a["time_spent_s"] is not None for a in got)

    # leaving the page releases the second batch
    browser.get("about:blank")
    with Client(server.url, token=ENG) as c:
        deadline = time.monotonic() + 10
        while c.stats("ui")["queue"]["leased"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.stats("ui")["queue"]["leased"] == 0


def test_item_html_renders_as_text(server, browser):
    with Client(server.url, token=ADMIN) as c:
        c.create_project("html", ["a", "b"], settings={"eval_fraction": 0.0})
        c.ingest("html", [{"id": "x", "text": HTML_TEXT}])
    sign_in(browser, server.url, ALICE)
    browser.get(server.url + "/#/label/html")
    item_id, text = wait_for(browser, current_item)
    assert item_id == "x" and text == HTML_TEXT
    assert browser.find_elements(By.CSS_SELECTOR, "#item-text *") == []
    assert browser.execute_script("return window.__pwned === undefined")
    screenshot(browser, "html-as-text")


def test_the_dashboard_shows_its_plots_after_rounds(server, browser):
    with Client(server.url, token=ADMIN) as c:
        c.create_project("dash", CLASSES, settings={"eval_fraction": 0.3, "retrain_every": 1000})
        c.ingest("dash", [{"id": f"d{k}", "text": f"{'great' if k % 2 else 'awful'} thing {k}"}
                          for k in range(40)])
        c.register_lfs("dash", source=GREAT_AWFUL_LFS)
        for _ in range(2):
            with c.lease("dash", "eng", size=20) as lease:
                c.submit("dash", "eng", [lease.answer(it, label="pos" if "great" in it["text"] else "neg")
                                         for it in lease.items])
            c.run_round("dash")
    sign_in(browser, server.url, ENG)
    browser.get(server.url + "/#/projects/dash")
    wait_for(browser, lambda d: state(d) == "dashboard")
    points = browser.find_elements(By.CSS_SELECTOR, "#curve svg circle.point")
    assert len(points) >= 4  # two rounds, accuracy and macro-F1 at least
    assert len(browser.find_elements(By.CSS_SELECTOR, "#curve svg polygon")) >= 1  # interval bands
    assert len(browser.find_elements(By.CSS_SELECTOR, "#queue svg rect")) >= 4
    lf_rows = browser.find_elements(By.CSS_SELECTOR, "#lfs tr")
    assert {r.text.split()[0] for r in lf_rows[1:]} == {"says_great", "says_awful"}
    assert "eng" in browser.find_element(By.ID, "annotators").text
    assert "round" in browser.find_element(By.ID, "jobs").text
    screenshot(browser, "dashboard")


def test_the_page_renews_the_lease_while_the_person_works(server, browser):
    with Client(server.url, token=ADMIN) as c:
        c.create_project("slow", CLASSES, settings={"eval_fraction": 0.0, "lease_ttl_s": 2.0,
                                                    "batch_size": 2})
        c.ingest("slow", [{"id": f"s{k}", "text": f"slow thing {k}"} for k in range(2)])
    sign_in(browser, server.url, ALICE)
    browser.get(server.url + "/#/label/slow")
    first, _ = wait_for(browser, current_item)
    time.sleep(5)  # more than two lease lifetimes: only renewals keep the items
    with Client(server.url, token=ENG) as c:
        assert c.stats("slow")["queue"]["leased"] == 2
    keys(browser, "1")
    wait_for(browser, lambda d: (got := current_item(d)) and got[0] != first)
    keys(browser, "2")
    wait_for(browser, lambda d: state(d) == "review")
    keys(browser, Keys.ENTER)
    wait_for(browser, lambda d: state(d) == "exhausted")
    got = httpx.get(f"{server.url}/projects/slow/annotations",
                    headers={"authorization": f"Bearer {ENG}"}).json()
    assert sorted(a["label"] for a in got) == [0, 1]


def test_swagger_ui_renders_from_the_package(server, browser):
    browser.get(server.url + "/docs")  # this machine reaches no CDN: the assets are the server's
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
    assert "labelloop" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info").text
    screenshot(browser, "docs")
    browser.get(server.url + "/redoc")
    wait_for(browser, lambda d: "labelloop" in d.find_element(By.TAG_NAME, "body").text
             and d.find_elements(By.CSS_SELECTOR, "h2"))
