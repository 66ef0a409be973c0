"""`lingshu predict` streams: its peak memory must not grow with the input.

    python benchmarks/bench_predict_memory.py [--model DIR] [--sizes 2000,200000]

For each size, a plain-text file of that many lines (CLUENER2020 dev texts, repeated, each line
prefixed with its number so no two are equal) is predicted by `lingshu predict` in its own
process; peak RSS (`ru_maxrss` from wait4), wall and CPU time are that process's. Also checks that
the output has one record per input line, in input order. Writes
benchmarks/results/predict_memory.json and prints a table with the ratio of peak RSS to the
smallest size's.

Default model: the tiny GlobalPointer fixture (tests/fixtures/legacy/ner-globalpointer-bert), so
the run measures the streaming machinery rather than a large encoder's weights; pass --model for
a trained directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_predict(model: str, src: Path, out: Path, batch_size: int) -> dict:
    cmd = [sys.executable, "-m", "lingshu.cli", "predict", model, str(src), "-o", str(out), "--device", "cpu",
           "--batch-size", str(batch_size)]
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ,
                                                                                     "HF_HUB_OFFLINE": "1"})
    stdout = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return {"wall_s": time.perf_counter() - t, "peak_rss_mib": ru.ru_maxrss / 1024,
            "cpu_s": ru.ru_utime + ru.ru_stime, "stdout": stdout.strip().splitlines()[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "tests" / "fixtures" / "legacy" / "ner-globalpointer-bert"))
    ap.add_argument("--sizes", default="2000,200000")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "work" / "predict_memory"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "predict_memory.json"))
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    dev = [json.loads(x)["text"] for x in (Path(a.shared) / "data" / "cluener" / "dev.json").read_text(
        encoding="utf-8").splitlines() if x.strip()]
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        src, out = work / f"in_{n}.txt", work / f"out_{n}.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(f"{i} {dev[i % len(dev)]}\n")
        r = run_predict(a.model, src, out, a.batch_size)
        with open(out, encoding="utf-8") as f:
            order_ok, lines = True, 0
            for i, line in enumerate(f):
                lines += 1
                order_ok &= json.loads(line)["text"].startswith(f"{i} ")
        r.update({"lines": n, "output_records": lines, "in_order": order_ok, "texts_per_s": n / r["wall_s"],
                  "input_mib": src.stat().st_size / 2**20})
        rows.append(r)
        print(f"{n:>9,} lines: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['wall_s']:.0f} s, "
              f"{r['texts_per_s']:.0f} texts/s, {lines:,} records, in order: {order_ok}")
        src.unlink()
        out.unlink()
    base = rows[0]["peak_rss_mib"]
    print("\n| lines | input MiB | peak RSS MiB | vs smallest | texts/s | records in order |\n|---|---|---|---|---|---|")
    for r in rows:
        r["rss_ratio"] = r["peak_rss_mib"] / base
        print(f"| {r['lines']:,} | {r['input_mib']:.1f} | {r['peak_rss_mib']:.0f} | {r['rss_ratio']:.3f} | "
              f"{r['texts_per_s']:.0f} | {r['in_order'] and r['output_records'] == r['lines']} |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"model": a.model, "batch_size": a.batch_size, "runs": rows}, indent=2),
                           encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
