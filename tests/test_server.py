"""`lingshu serve`: the API answers what the Python API answers for every task, every limit has
its status code and a JSON error, concurrent requests are micro-batched and none is lost, an
overload gives 503s, and the page is served from the package."""

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from lingshu.inference.pipeline import load_pipeline  # noqa: E402
from lingshu.inference.server import MicroBatcher, create_app  # noqa: E402

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
TEXTS = ["患者三天前出现发热、咳嗽，自服阿莫西林后无好转。", "糖尿病患者常出现多饮、多尿。", "血压偏高。"]


@pytest.fixture(scope="module")
def pipes():
    return {n: load_pipeline(LEGACY / n, device="cpu") for n in ("ner-globalpointer-bert", "re-bert", "pair-bert")}


@pytest.fixture
def client(pipes):
    with TestClient(create_app(pipes["ner-globalpointer-bert"])) as c:
        yield c


def test_ner_answers_what_the_python_api_answers(client, pipes):
    nlp = pipes["ner-globalpointer-bert"]
    r = client.post("/v1/extract", json={"texts": TEXTS})
    assert r.status_code == 200
    assert r.json()["documents"] == [d.to_dict() for d in nlp(TEXTS)]
    assert sum(len(d["entities"]) for d in r.json()["documents"]) > 0
    one = client.post("/v1/extract", json={"text": TEXTS[0]}).json()["documents"]
    assert one == [nlp(TEXTS[0]).to_dict()]


def test_re_and_pair_models(pipes):
    with TestClient(create_app(pipes["re-bert"])) as c:
        r = c.post("/v1/extract", json={"texts": TEXTS})
        assert r.status_code == 200 and r.json()["documents"] == [d.to_dict() for d in pipes["re-bert"](TEXTS)]
        assert c.get("/v1/model").json()["schema"]
    pair = pipes["pair-bert"]
    with TestClient(create_app(pair)) as c:
        r = c.post("/v1/extract", json={"text": "糖尿病吃什么", "text_pair": "糖尿病的饮食"})
        assert r.status_code == 200
        assert r.json()["documents"] == [pair("糖尿病吃什么", "糖尿病的饮食").to_dict()]
        many = c.post("/v1/extract", json={"texts": [{"text": "头痛", "text_pair": "偏头痛"}] * 3})
        assert many.status_code == 200 and len(many.json()["documents"]) == 3
        assert c.post("/v1/extract", json={"text": "头痛"}).status_code == 422  # no text_pair
        assert c.get("/v1/model").json()["task"] == "pair"


def test_model_health_docs_and_page(client):
    info = client.get("/v1/model").json()
    assert info["task"] == "ner" and info["decoder"] == "globalpointer" and len(info["labels"]) == 9
    assert info["backend"] == "torch" and info["backbone"]["model_type"] == "bert" and info["max_seq_length"] == 64
    assert client.get("/health").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/v1/extract" in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "/v1/extract" in page.text and "<script>" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN: machines are offline
    docs = client.get("/docs")  # Swagger UI from the package's own files, too
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text and "https://" not in docs.text
    js = docs.text.split('src="', 1)[1].split('"', 1)[0]
    assert client.get(js).status_code == 200 and "SwaggerUIBundle" in client.get(js).text


@pytest.mark.parametrize("body,status,words", [
    ({"texts": ["x"] * 65}, 413, "at most 64"),
    ({"text": "发" * 10_001}, 413, "characters"),
    ({"text": 3}, 422, "text"),
    ({"txt": "发热"}, 422, "txt"),
    ({}, 422, "either"),
    ({"text": "发热", "texts": ["咳嗽"]}, 422, "either"),
    ({"text": "   "}, 422, "empty"),
    ({"text": "发热", "text_pair": "咳嗽"}, 422, "pair models"),
])
def test_limits_and_bad_requests_are_json_errors(client, body, status, words):
    r = client.post("/v1/extract", json=body)
    assert r.status_code == status, r.text
    assert r.json()["status"] == status and words in r.json()["error"]


def test_bad_json_big_body_and_unknown_path(client):
    r = client.post("/v1/extract", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()
    r = client.post("/v1/extract", content=b"x" * ((1 << 20) + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["error"]
    assert client.get("/nope").status_code == 404 and "error" in client.get("/nope").json()


def test_api_key(pipes):
    with TestClient(create_app(pipes["ner-globalpointer-bert"], api_key="s3cret")) as c:
        assert c.post("/v1/extract", json={"text": "发热"}).status_code == 401
        assert c.get("/v1/model", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.post("/v1/extract", json={"text": "发热"}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200  # for load balancers


class SlowNlp:
    """Stands in for a pipeline where the test needs control of time: echoes each text back as
    a Document, after `delay` seconds per batch, and records the batch sizes."""

    def __init__(self, real, delay):
        self.real, self.delay, self.sizes = real, delay, []
        self.spec, self.task, self.backend, self.model = real.spec, real.task, real.backend, real.model

    def as_document(self, x):
        return self.real.as_document(x)

    def predict(self, docs):
        self.sizes.append(len(docs))
        time.sleep(self.delay)
        return docs


def _in_threads(send, n: int, timeout: float = 300) -> None:
    """send(0) … send(n-1), each in its own thread, all joined."""
    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)


def _concurrently(c, bodies):
    out = [None] * len(bodies)

    def send(i):
        out[i] = c.post("/v1/extract", json=bodies[i])

    _in_threads(send, len(bodies))
    return out


def test_sixteen_concurrent_clients_are_batched_and_none_is_lost(pipes):
    nlp = SlowNlp(pipes["ner-globalpointer-bert"], delay=0.2)
    with TestClient(create_app(nlp, max_batch=64, max_wait_ms=50)) as c:
        bodies = [{"texts": [f"第{i}号病人", f"发热{i}天"]} for i in range(16)]
        answers = _concurrently(c, bodies)
    assert all(r.status_code == 200 for r in answers)
    for body, r in zip(bodies, answers):  # each client gets its own texts back, in order
        assert [d["text"] for d in r.json()["documents"]] == body["texts"]
    assert sum(nlp.sizes) == 32 and max(nlp.sizes) > 2  # several requests shared a forward pass


def test_overload_answers_503_with_retry_after_not_a_crash(pipes):
    nlp = SlowNlp(pipes["ner-globalpointer-bert"], delay=0.5)
    with TestClient(create_app(nlp, max_batch=1, max_wait_ms=0, max_queue=3)) as c:
        answers = _concurrently(c, [{"text": f"发热{i}"} for i in range(12)])
        codes = [r.status_code for r in answers]
        assert set(codes) <= {200, 503} and codes.count(200) >= 1 and codes.count(503) >= 1
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "overloaded" in busy.json()["error"]
        assert c.post("/v1/extract", json={"text": "发热"}).status_code == 200  # and it recovers


def test_micro_batcher_passes_errors_to_every_waiting_request():
    import asyncio

    def fail(items):
        raise RuntimeError("boom")

    async def go():
        b = MicroBatcher(fail, max_batch=8, max_wait_ms=20)
        await b.start()
        res = await asyncio.gather(b.submit([1]), b.submit([2]), return_exceptions=True)
        await b.stop()
        return res, b.pending

    res, pending = asyncio.run(go())
    assert all(isinstance(r, RuntimeError) for r in res) and pending == 0


def test_an_app_whose_lifespan_runs_twice_still_answers(pipes):
    """A second client on the same app (the schemathesis test found it: the first client's
    shutdown had closed the model's worker pool for good)."""
    app = create_app(pipes["ner-globalpointer-bert"])
    for _ in range(2):
        with TestClient(app) as c:
            assert c.post("/v1/extract", json={"text": TEXTS[2]}).status_code == 200


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """`lingshu serve` as a subprocess on a free 127.0.0.1 port, until the block ends."""

    def __init__(self, model, *args):
        import subprocess
        import sys

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.p = subprocess.Popen([sys.executable, "-m", "lingshu.cli", "serve", str(model), "--port", str(self.port),
                                   *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def __enter__(self):
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                assert self.p.poll() is None, self.p.stdout.read()
                time.sleep(0.3)
        raise AssertionError("the server did not come up")

    def __exit__(self, *exc):
        self.p.terminate()
        self.p.wait(timeout=60)


def test_lingshu_serve_on_a_loopback_port(tmp_path):
    """The command itself: uvicorn on a free 127.0.0.1 port, answering like the app."""
    import httpx

    with _Server(LEGACY / "ner-crf-bert") as server:
        r = httpx.post(f"{server.url}/v1/extract", json={"text": "患者出现发热咳嗽"}, timeout=60)
        assert r.status_code == 200
        want = load_pipeline(LEGACY / "ner-crf-bert", device="cpu")("患者出现发热咳嗽").to_dict()
        assert r.json()["documents"] == [want]


def _clients(url, bodies, retry_503=False):
    """One thread per body, all released at once by a barrier; (status, json) per body. With
    `retry_503`, a 503 is retried after its Retry-After (bounded) until it is answered."""
    import httpx

    out = [None] * len(bodies)
    go = threading.Barrier(len(bodies))

    def send(i):
        go.wait(timeout=120)
        for _ in range(200 if retry_503 else 1):
            r = httpx.post(f"{url}/v1/extract", json=bodies[i], timeout=120)
            out[i] = (r.status_code, r.json(), r.headers.get("retry-after"))
            if r.status_code != 503 or not retry_503:
                return
            time.sleep(float(r.headers["retry-after"]) / 20)  # sooner than asked: keep the test short

    _in_threads(send, len(bodies), timeout=600)
    return out


def test_load_sixteen_clients_on_a_real_server(shared):
    """16 concurrent clients on `lingshu serve` over loopback, with real CLUENER dev texts: every
    answer is the Python API's answer for that client's own texts; with a tiny queue the overflow
    is answered 503 with Retry-After, the server keeps running, and retried requests are answered
    correctly."""
    import json

    model = LEGACY / "ner-crf-bert"
    lines = (shared / "cluener" / "dev.json").read_text(encoding="utf-8").splitlines()[:64]
    texts = [json.loads(x)["text"] for x in lines]
    bodies = [{"texts": texts[4 * i : 4 * i + 4]} for i in range(16)]
    nlp = load_pipeline(model, device="cpu")
    want = [[d.to_dict() for d in nlp(b["texts"])] for b in bodies]
    with _Server(model, "--max-batch", "8", "--max-wait-ms", "20", "--max-queue", "4") as server:
        answers = _clients(server.url, bodies)
        codes = [a[0] for a in answers]
        assert set(codes) <= {200, 503} and codes.count(503) >= 1, codes
        assert all(a[2] == "1" and "overloaded" in a[1]["error"] for a in answers if a[0] == 503)
        assert all(a[1]["documents"] == w for a, w in zip(answers, want) if a[0] == 200)
        answers = _clients(server.url, bodies, retry_503=True)
        assert [a[0] for a in answers] == [200] * 16
        assert [a[1]["documents"] for a in answers] == want  # none lost, none mixed up
        assert server.p.poll() is None  # still serving
