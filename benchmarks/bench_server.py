"""`lingshu serve` under 16 concurrent clients, with and without micro-batching.

One server at a time (`lingshu serve MODEL` as a subprocess on a free loopback port), each
client a thread with its own HTTP connection sending one CLUENER dev text per request, one
request after the other, until the texts run out. Reported per arm: requests/s over the whole
run, latency p50/p99 (per request, as the client sees it), the batch sizes the server ran
(`/health`), and the ratio of micro-batched to unbatched requests/s. Every answer is checked
against `lingshu.load(MODEL)` on the same text.

    HF_HUB_OFFLINE=1 python benchmarks/bench_server.py --model tests/fixtures/legacy/ner-crf-bert --requests 800

Arms: "micro-batched" (`--max-batch 32 --max-wait-ms 5`, the defaults) and "one at a time"
(`--max-batch 1 --max-wait-ms 0`). The clients and the server share the machine's cores, so on
a 2-core machine the figures are the whole system's, client work included.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
ARMS = {"micro-batched": ["--max-batch", "32", "--max-wait-ms", "5"],
        "one at a time": ["--max-batch", "1", "--max-wait-ms", "0"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model: str, args: list[str], threads: int | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "lingshu.cli", "serve", model, "--port", str(port), "--max-queue", "4096", *args]
    if threads:
        cmd += ["--threads", str(threads)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return p, url
        except httpx.TransportError:
            if p.poll() is not None:
                raise SystemExit(f"the server exited ({p.returncode})")
            time.sleep(0.3)
    p.kill()
    raise SystemExit("the server did not come up")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_arm(url: str, texts: list[str], want: list[dict], clients: int) -> dict:
    lat: list[float] = []
    wrong = failed = 0
    nxt = 0
    lock = threading.Lock()
    go = threading.Barrier(clients)

    def client():
        nonlocal nxt, wrong, failed
        with httpx.Client(timeout=300) as c:
            go.wait()
            while True:
                with lock:
                    i = nxt
                    nxt += 1
                if i >= len(texts):
                    return
                t = time.perf_counter()
                r = c.post(url + "/v1/extract", json={"text": texts[i]})
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    if r.status_code != 200:
                        failed += 1
                    elif r.json()["documents"] != [want[i]]:
                        wrong += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    health = httpx.get(url + "/health", timeout=30).json()
    return {"requests": len(texts), "wall_s": round(wall, 2), "requests_per_s": round(len(texts) / wall, 1),
            "latency_p50_ms": round(1000 * pct(lat, 0.5), 1), "latency_p99_ms": round(1000 * pct(lat, 0.99), 1),
            "failed": failed, "wrong": wrong, "batches_run": health.get("batches_run")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "tests" / "fixtures" / "legacy" / "ner-crf-bert"))
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="the server's --threads")
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "server_speed.json"))
    a = ap.parse_args()

    import lingshu

    lines = (Path(a.shared) / "data" / "cluener" / "dev.json").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(x)["text"] for x in lines[: a.requests]]
    nlp = lingshu.load(a.model, device="cpu")
    want = [d.to_dict() for d in nlp(texts)]
    res = {"model": a.model, "clients": a.clients, "cpu": os.cpu_count(),
           "load_before": os.getloadavg()[0], "arms": {}}
    for name, args in ARMS.items():
        p, url = start(a.model, args, a.threads)
        try:
            run_arm(url, texts[:32], want[:32], a.clients)  # warm-up
            res["arms"][name] = {"server_args": args, **run_arm(url, texts, want, a.clients)}
        finally:
            p.terminate()
            p.wait(timeout=60)
        print(name, res["arms"][name], flush=True)
    res["load_after"] = os.getloadavg()[0]
    arms = res["arms"]
    res["micro_batched_over_one_at_a_time"] = round(
        arms["micro-batched"]["requests_per_s"] / arms["one at a time"]["requests_per_s"], 2)
    Path(a.out).write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"| arm | requests/s | p50 ms | p99 ms | failed | wrong |\n|---|---|---|---|---|---|")
    for name, r in arms.items():
        print(f"| {name} | {r['requests_per_s']} | {r['latency_p50_ms']} | {r['latency_p99_ms']} | {r['failed']} | "
              f"{r['wrong']} |")
    print(f"micro-batched / one at a time: {res['micro_batched_over_one_at_a_time']}x")


if __name__ == "__main__":
    main()
