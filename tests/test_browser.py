"""The web page in a real headless Chromium: `lingshu serve` on a loopback port with an API key,
the page loaded, the key given, a sentence submitted; the entities it highlights are the API's
answer for that sentence, and crossing entities are drawn each over its own characters. Needs
Debian's chromium and chromium-driver (.ci/run installs them); skipped where they are absent."""

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


@pytest.fixture
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "lingshu.cli", "serve", str(LEGACY / "ner-globalpointer-bert"),
                          "--port", str(port), "--api-key", KEY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            assert p.poll() is None, p.stdout.read()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
    yield url
    p.terminate()
    p.wait(timeout=60)


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
