"""The web page in a real headless Chromium: `lingshu serve` on a loopback port, the page loaded,
a sentence submitted; the entities it highlights are the API's answer for that sentence. Needs
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


@pytest.fixture
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "lingshu.cli", "serve", str(LEGACY / "ner-globalpointer-bert"),
                          "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


def test_page_highlights_what_the_api_answers(server, tmp_path):
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_page_load_timeout(120)
        driver.get(server + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: "model" in d.find_element(By.ID, "model").text)
        box = driver.find_element(By.ID, "input")
        box.clear()
        box.send_keys(SENTENCE)
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: d.find_element(By.ID, "go").get_attribute("data-done") == "1")
        marks = driver.find_elements(By.CSS_SELECTOR, "#text mark.ent")
        shown = sorted((int(m.get_attribute("data-start")), int(m.get_attribute("data-end")),
                        m.get_attribute("data-type")) for m in marks)
        legend = {s.get_attribute("data-type") for s in driver.find_elements(By.CSS_SELECTOR, "#legend span")}
        driver.save_screenshot(str(tmp_path / "page.png"))
        text = driver.find_element(By.ID, "text").text
    finally:
        driver.quit()
    api = httpx.post(server + "/v1/extract", json={"text": SENTENCE}, timeout=60).json()["documents"][0]
    want = sorted((e["start"], e["end"], e["type"]) for e in api["entities"])
    assert want and shown == want
    assert {t for _, _, t in want} <= legend and len(legend) == 9
    assert text.replace("\n", "") == SENTENCE  # the text itself is shown whole, marks and all
    assert (tmp_path / "page.png").stat().st_size > 1000
