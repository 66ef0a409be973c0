"""The web page in a real headless Chromium: `lingshu serve` on a loopback port with an API key,
the page loaded, the key given, a sentence submitted; the entities it highlights are the API's
answer for that sentence, and crossing entities are drawn each over its own characters. A
relation model's triples table and a pair model's label and probabilities are the API's too. Needs
Debian's chromium and chromium-driver (.ci/run installs them); skipped where they are absent."""

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
httpx = pytest.importorskip("httpx")

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium and chromedriver are not installed")
LEGACY = Path(__file__).parent / "fixtures" / "legacy"
SENTENCE = "患者三天前出现发热、咳嗽，自服阿莫西林后无好转，今来我院呼吸内科就诊。"
KEY = "k3y-for-the-test"


@contextlib.contextmanager
def _serve(model: str, *extra: str):
    """`lingshu serve MODEL` on a free loopback port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "lingshu.cli", "serve", str(LEGACY / model), "--port", str(port),
                          *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                assert p.poll() is None, p.stdout.read()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.3)
        yield url
    finally:
        p.terminate()
        p.wait(timeout=60)


@pytest.fixture
def server():
    with _serve("ner-globalpointer-bert", "--api-key", KEY) as url:
        yield url


def _chrome(tmp_path):
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def test_page_highlights_what_the_api_answers(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chrome(tmp_path)
    try:
        driver.set_page_load_timeout(120)
        driver.get(server + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_element(By.ID, "keybox").is_displayed())  # the server answered 401
        assert "API key" in driver.find_element(By.ID, "error").text
        driver.find_element(By.ID, "key").send_keys(KEY + Keys.TAB)
        wait.until(lambda d: "model" in d.find_element(By.ID, "model").text)
        crossing = driver.execute_script(CROSSING)
        box = driver.find_element(By.ID, "input")
        box.clear()
        box.send_keys(SENTENCE)
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: d.find_element(By.ID, "go").get_attribute("data-done") == "1")
        marks = driver.find_elements(By.CSS_SELECTOR, "#text mark.ent:not(.cont)")
        shown = sorted((int(m.get_attribute("data-start")), int(m.get_attribute("data-end")),
                        m.get_attribute("data-type")) for m in marks)
        legend = {s.get_attribute("data-type") for s in driver.find_elements(By.CSS_SELECTOR, "#legend span")}
        driver.save_screenshot(str(tmp_path / "page.png"))
        text = driver.find_element(By.ID, "text").text
    finally:
        driver.quit()
    api = httpx.post(server + "/v1/extract", json={"text": SENTENCE}, headers={"X-API-Key": KEY},
                     timeout=60).json()["documents"][0]
    want = sorted((e["start"], e["end"], e["type"]) for e in api["entities"])
    assert want and shown == want
    assert {t for _, _, t in want} <= legend and len(legend) == 9
    assert text.replace("\n", "") == SENTENCE  # the text itself is shown whole, marks and all
    assert (tmp_path / "page.png").stat().st_size > 1000
    # crossing entities: each one's pieces, read back from the drawn page, cover exactly its characters
    for (start, end, typ), covered in crossing:
        assert covered == SENTENCE[start:end], (start, end, typ, covered)


# draws the sentence with crossing and nested entities, then returns for each entity the text of
# the marks that carry its data-start/end, in order
CROSSING = """
const text = %s;
const ents = [{start: 2, end: 9, type: "sym"}, {start: 5, end: 12, type: "dis"}, {start: 7, end: 9, type: "sym"},
              {start: 13, end: 19, type: "dru"}, {start: 15, end: 22, type: "dis"}];
const box = document.createElement("div");
box.innerHTML = highlight(text, ents);
return ents.map(e => [[e.start, e.end, e.type], [...box.querySelectorAll(
  `mark[data-start="${e.start}"][data-end="${e.end}"][data-type="${e.type}"]`)].map(m => m.textContent).join("")]);
""" % repr(SENTENCE).replace("'", '"')


def _submit(driver, url: str, text: str, text_pair: str | None = None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_page_load_timeout(120)
    driver.get(url + "/")
    wait = WebDriverWait(driver, 120)
    wait.until(lambda d: "model" in d.find_element(By.ID, "model").text)
    for box_id, value in (("input", text), ("input2", text_pair)):
        if value is not None:
            box = driver.find_element(By.ID, box_id)
            box.clear()
            box.send_keys(value)
    driver.find_element(By.ID, "go").click()
    wait.until(lambda d: d.find_element(By.ID, "go").get_attribute("data-done") == "1")


def test_page_shows_the_triples_the_api_answers(shared, tmp_path):
    from selenium.webdriver.common.by import By

    texts = [json.loads(x)["text"] for x in
             (shared / "cmeie" / "CMeIE_dev.jsonl").read_text(encoding="utf-8").splitlines()[:64]]
    with _serve("re-bert") as url:
        docs = httpx.post(url + "/v1/extract", json={"texts": texts}, timeout=300).json()["documents"]
        doc = max(docs, key=lambda d: len(d.get("relations", [])))  # a text the tiny model finds triples in
        assert doc.get("relations")
        driver = _chrome(tmp_path)
        try:
            _submit(driver, url, doc["text"])
            rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in driver.find_elements(By.CSS_SELECTOR, "#rel-table tr")][1:]
        finally:
            driver.quit()
    want = [[r["subject"]["text"], r["predicate"], r["object"]["text"], f"{r['score']:.3f}"] for r in doc["relations"]]
    assert rows == want


def test_page_shows_the_pair_label_and_probabilities_the_api_answers(shared, tmp_path):
    from selenium.webdriver.common.by import By

    first = json.loads((shared / "kuake-qqr" / "KUAKE-QQR_dev.json").read_text(encoding="utf-8"))[0]
    with _serve("pair-bert") as url:
        api = httpx.post(url + "/v1/extract", json={"text": first["query1"], "text_pair": first["query2"]},
                         timeout=120).json()["documents"][0]
        driver = _chrome(tmp_path)
        try:
            _submit(driver, url, first["query1"], first["query2"])
            label = driver.find_element(By.ID, "pair-label").text
            probs = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                     for tr in driver.find_elements(By.CSS_SELECTOR, "#pair table tr")]
        finally:
            driver.quit()
    assert label == api["label"]
    assert probs == [[k, f"{v:.3f}"] for k, v in api["label_scores"].items()]
