"""The review view in a real headless Chromium against a real server: two annotators disagree,
routing sends the item to the review queue, a reviewer signs in, reads the earlier answers and
why the item is there, decides with the keyboard and says why; the decision is the item's label."""

from __future__ import annotations

import json

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from api.client import Client
from tests.server import Server
from tests.ui.conftest import screenshot
from tests.ui.test_label_page import CLASSES, current_item, keys, sign_in, state, wait_for

ADMIN, RITA = "admin-token-0123456789", "rita-token-0123456789"
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("review-ui")
    tokens = root / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": ADMIN, "name": "adm", "role": "admin"},
        {"token": RITA, "name": "rita", "role": "reviewer"},
        {"token": ALICE, "name": "alice", "role": "annotator"},
        {"token": BOB, "name": "bob", "role": "annotator"}]))
    srv = Server(root / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens)}).start()
    yield srv
    srv.stop()


def answer(url: str, token: str, who: str, labels: dict[str, str]) -> None:
    with Client(url, token=token) as c, c.lease("rv", annotator=who, size=10) as lease:
        c.submit("rv", who, [lease.answer(it, label=labels[it["id"]]) for it in lease.items])


def test_a_reviewer_decides_a_disputed_item_with_the_keyboard(server, browser):
    with Client(server.url, token=ADMIN) as c:
        c.create_project("rv", CLASSES, guidelines="Praise is pos; everything else is neg.",
                         settings={"eval_fraction": 0.0, "retrain_every": 1000,
                                   "redundancy_fraction": 1.0, "redundancy_k": 2,
                                   "max_required": 2, "min_agreement": 1.0})
        c.ingest("rv", [{"id": "r0", "text": "great video, thanks"},
                        {"id": "r1", "text": "not bad I guess"}])
    answer(server.url, ALICE, "alice", {"r0": "pos", "r1": "pos"})
    answer(server.url, BOB, "bob", {"r0": "pos", "r1": "neg"})

    sign_in(browser, server.url, RITA)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "a.review-link"))[0].click()
    got = wait_for(browser, lambda d: current_item(d))
    assert got == ("r1", "not bad I guess")  # r0 agreed: only the disputed item is here
    page = browser.find_element(By.ID, "view").text
    assert "the annotators disagree: 2 answers, 50% on the most-given class" in page
    rows = browser.find_element(By.ID, "answers").text
    assert "alice pos" in rows and "bob neg" in rows and "v1" in rows
    screenshot(browser, "review")

    keys(browser, "2")  # pos
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#choices button[data-class=pos]")
             .get_attribute("class") == "")
    keys(browser, Keys.ENTER)  # no comment yet: nothing is recorded
    keys(browser, "praise, by the guidelines", Keys.ENTER)
    wait_for(browser, lambda d: state(d) == "exhausted")
    assert "Nothing waits for your review" in browser.find_element(By.ID, "nothing").text

    log = httpx.get(f"{server.url}/projects/rv/annotations",
                    headers={"authorization": f"Bearer {ADMIN}"}).json()
    reviews = [(a["item_id"], a["annotator"], a["label"], a["comment"]) for a in log
               if a["kind"] == "review"]
    assert reviews == [("r1", "rita", 1, "praise, by the guidelines")]
    rows = {r["id"]: r for r in map(json.loads, httpx.get(
        f"{server.url}/projects/rv/export", headers={"authorization": f"Bearer {ADMIN}"}
    ).text.splitlines())}
    assert (rows["r1"]["label"], rows["r1"]["adjudicated"]) == ("pos", True)


def test_an_annotator_sees_no_review_link(server, browser):
    sign_in(browser, server.url, ALICE)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "a.label-link"))
    assert not browser.find_elements(By.CSS_SELECTOR, "a.review-link")
