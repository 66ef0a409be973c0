"""ONNX export: inference speed of lingshu's backends on CPU against transformers' pipeline.

    python benchmarks/bench_onnx.py [--shapes tiny,base] [--tasks ner-globalpointer,ner-crf]
                                    [--texts 2000] [--base-texts 128] [--latency 100] [--threads 1]

For each shape and task a lingshu NER model directory is made by `lingshu.training.train.run`
with `trainer.max_steps=1` on the first 64 CLUENER2020 training texts (random weights, one
optimizer step: the speed is the architecture's, the predictions mean nothing), tokenizer the
shared bert-base-chinese vocabulary; it is exported with `export_onnx` (fp32, and --int8).
Shapes: `tiny` is the repo's tiny-bert config (4 layers, hidden 256, 4 heads, FFN 1024), `base`
a BERT-base shape (12 layers, hidden 768, 12 heads, FFN 3072).

Arms, all in this one process: lingshu torch fp32, lingshu torch bf16 (`precision="bf16"`),
lingshu ONNX fp32, lingshu ONNX int8, and the reference, transformers'
`pipeline("token-classification", aggregation_strategy="simple")` over a randomly initialised
`BertForTokenClassification` of the same shape and vocabulary (21 labels: BIO over CLUENER's
10 types). The texts are CLUENER2020 dev texts. Throughput: the texts are cut into chunks and
every chunk goes through every arm, the arms' order rotating from chunk to chunk, so a change of
load on the machine falls on all arms alike (lingshu: `nlp.pipe(chunk, batch_size=64)`; the
reference: `ref(chunk, batch_size=64)`). Latency: single texts, `nlp(text)` / `ref(text)`, the
arms interleaved text by text. Tokens are counted per arm as that arm's own tokenization gives
them ([CLS] and [SEP] included). Memory: the RSS each arm adds when loaded (and warmed up) in
this process, the process's peak RSS, and with --rss-subprocess each arm's peak RSS alone in a
fresh process (load + one chunk).

Threads: `--threads N` sets torch's and onnxruntime's intra-op threads for every arm (default 1;
0 leaves each library's default). On a 2-core machine shared with another job, 2 torch threads
made one tiny-model text take ~660 ms against ~35 ms with 1 (OpenMP threads waiting on a
descheduled sibling), so 1 is the default here.

For the base shape the machine's matmul peak is timed in the same run (torch.mm, fp32 and bf16,
2048x2048) and the achieved rate of lingshu's fastest fp32 arm is estimated from its texts/s.

Writes benchmarks/results/onnx_speed.json and prints one markdown table per shape and task.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {
    "tiny": {},  # the tiny-bert config as it is
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}
CLUENER_TYPES = ["address", "book", "company", "game", "government", "movie", "name", "organization",
                 "position", "scene"]


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_dirs(shape: str, task: str, work: Path, shared: Path) -> tuple[Path, Path, Path]:
    """The model directory (one training step from scratch), its fp32 and int8 exports; kept
    and reused when already there."""
    from lingshu.config import compose
    from lingshu.inference.onnx import export_onnx, is_exported
    from lingshu.training.train import run

    base = work / f"{shape}-{task}"
    model_dir, fp32, int8 = base / "model", base / "onnx-fp32", base / "onnx-int8"
    if not (model_dir / "config.json").is_file():
        sub = work / "train64.json"
        if not sub.is_file():
            lines = (shared / "data" / "cluener" / "train.json").read_text(encoding="utf-8").splitlines()
            sub.write_text("\n".join(lines[:64]) + "\n", encoding="utf-8")
        overrides = [f"task={task}", "model=tiny-bert", f"model.tokenizer={shared / 'data' / 'vocab' / 'bert-base-chinese'}",
                     f"data.train={sub}", "trainer.max_steps=1", "trainer.batch_size=8", "trainer.progress=false",
                     "trainer.bf16=false", "trainer.early_stopping_patience=0", f"output_dir={model_dir}"]
        overrides += [f"model.config.{k}={v}" for k, v in SHAPES[shape].items()]
        t = time.perf_counter()
        run(compose(overrides), model_dir)
        print(f"built {model_dir} in {time.perf_counter() - t:.0f} s", flush=True)
    for out, q in ((fp32, False), (int8, True)):
        if not is_exported(out):
            t = time.perf_counter()
            m = export_onnx(model_dir, out, int8=q)
            print(f"exported {out} in {time.perf_counter() - t:.0f} s (check: max |diff| {m.get('check_max_abs_diff'):.3g})",
                  flush=True)
    return model_dir, fp32, int8


class Arm:
    """One way of predicting: `batch(texts)` (64 per batch), `one(text)`, `tokens(texts)`."""

    def __init__(self, name, batch, one, tokens, linear_params=None):
        self.name, self.batch, self.one, self.tokens, self.linear_params = name, batch, one, tokens, linear_params


def lingshu_arm(name: str, path: Path, precision: str | None, batch_size: int, threads: int) -> Arm:
    import lingshu
    from lingshu.inference.onnx import OnnxBackend, exported_model, is_exported
    from lingshu.inference.pipeline import pipeline_for
    from lingshu.modeling.backbone import load_tokenizer
    from lingshu.schema import Document

    if is_exported(path):  # what lingshu.load(path) builds, with onnxruntime's thread count set
        nlp = pipeline_for(exported_model(path), load_tokenizer(str(path)), "cpu", batch_size, "fp32",
                           OnnxBackend(path, device="cpu", threads=threads))
    else:
        nlp = lingshu.load(str(path), device="cpu", batch_size=batch_size, precision=precision)

    def tokens(texts):  # the windows' lengths as the featurizer makes them
        feats = nlp.preprocess([Document(t) for t in texts])[0]
        return [len(f["input_ids"]) for f in feats]

    return Arm(name, lambda texts: list(nlp.pipe(texts, batch_size=batch_size)), nlp, tokens)


def reference_arm(model_dir: Path, batch_size: int) -> Arm:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification, pipeline

    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    labels = ["O"] + [f"{p}-{t}" for t in CLUENER_TYPES for p in ("B", "I")]
    config = BertConfig(**{k: cfg[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                              "intermediate_size", "max_position_embeddings")},
                        num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)})
    config._attn_implementation = cfg.get("_attn_implementation_internal") or "sdpa"
    torch.manual_seed(0)
    model = BertForTokenClassification(config).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))  # the same vocabulary lingshu's model was built with
    ref = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", device="cpu")

    def tokens(texts):
        return [len(x) for x in tok(texts, truncation=True, max_length=512)["input_ids"]]

    return Arm("transformers pipeline (reference)", lambda texts: ref(texts, batch_size=batch_size), ref, tokens)


def linear_params(path: Path) -> tuple[int, int, int]:
    """Parameters in the torch model's nn.Linear weights (the matmuls), hidden size, layers."""
    import torch

    from lingshu.modeling.model import load_model

    model = load_model(str(path))
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return n, model.config.hidden_size, model.config.num_hidden_layers


def matmul_peak(n: int = 2048, reps: int = 10) -> dict:
    import torch

    out = {}
    for dt in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
        for _ in range(2):
            torch.mm(a, b)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t)
        times.sort()
        out[str(dt).split(".")[-1]] = {"n": n, "reps": reps, "best_s": times[0], "median_s": times[len(times) // 2],
                                       "gflops_best": 2 * n**3 / times[0] / 1e9,
                                       "gflops_median": 2 * n**3 / times[len(times) // 2] / 1e9}
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def make_arm(key: str, dirs: tuple[Path, Path, Path], batch_size: int, threads: int) -> Arm:
    model_dir, fp32, int8 = dirs
    if key == "torch-fp32":
        return lingshu_arm("lingshu torch fp32", model_dir, "fp32", batch_size, threads)
    if key == "torch-bf16":
        return lingshu_arm("lingshu torch bf16", model_dir, "bf16", batch_size, threads)
    if key == "onnx-fp32":
        return lingshu_arm("lingshu ONNX fp32", fp32, None, batch_size, threads)
    if key == "onnx-int8":
        return lingshu_arm("lingshu ONNX int8", int8, None, batch_size, threads)
    return reference_arm(model_dir, batch_size)


ARMS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8", "reference")


def bench(shape: str, task: str, texts: list[str], n_latency: int, chunk: int, batch_size: int, work: Path,
          shared: Path, rss_subprocess: bool, threads: int) -> dict:
    dirs = build_dirs(shape, task, work, shared)
    arms = {}
    load = {}
    for key in ARMS:
        gc.collect()
        r0, t0 = rss_mib(), time.perf_counter()
        arm = make_arm(key, dirs, batch_size, threads)
        arm.batch(texts[:batch_size])  # warm-up: first-call costs (thread pools, graph optimization) left out
        arm.one(texts[0])
        load[key] = {"load_and_warmup_s": time.perf_counter() - t0, "rss_added_mib": rss_mib() - r0}
        arms[key] = arm
    toks = {k: sum(a.tokens(texts)) for k, a in arms.items()}
    wall = {k: 0.0 for k in arms}
    cpu = {k: 0.0 for k in arms}
    keys = list(arms)
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    for ci, part in enumerate(chunks):
        for k in keys[ci % len(keys):] + keys[: ci % len(keys)]:
            w, c = time.perf_counter(), time.process_time()
            out = arms[k].batch(part)
            wall[k] += time.perf_counter() - w
            cpu[k] += time.process_time() - c
            assert len(out) == len(part)
        print(f"  {shape}/{task}: chunk {ci + 1}/{len(chunks)} done", flush=True)
    lat = {k: [] for k in arms}
    for i, t in enumerate(texts[:n_latency]):
        for k in keys[i % len(keys):] + keys[: i % len(keys)]:
            w = time.perf_counter()
            arms[k].one(t)
            lat[k].append(time.perf_counter() - w)
    rows = {}
    ref_tps = len(texts) / wall["reference"]
    for k, a in arms.items():
        tps = len(texts) / wall[k]
        rows[k] = {"arm": a.name, "texts": len(texts), "wall_s": wall[k], "cpu_s": cpu[k], "texts_per_s": tps,
                   "tokens": toks[k], "tokens_per_s": toks[k] / wall[k], "vs_reference": tps / ref_tps,
                   "latency_n": len(lat[k]), "latency_p50_ms": 1e3 * pct(lat[k], 0.5),
                   "latency_p99_ms": 1e3 * pct(lat[k], 0.99), **load[k]}
    result = {"shape": shape, "task": task, "model_dir": str(dirs[0]), "texts": len(texts), "chunk": chunk,
              "batch_size": batch_size, "arms": rows, "process_peak_rss_mib_after": peak_rss_mib()}
    n_lin, h, layers = linear_params(dirs[0])
    lens = arms["torch-fp32"].tokens(texts)
    flops = 2 * n_lin * sum(lens) + layers * sum(4 * L * L * h for L in lens)
    result["flops_estimate"] = {"linear_params": n_lin, "hidden": h, "layers": layers, "flops_total": flops,
                                "how": "2 x (parameters of all nn.Linear weights: encoder + head) x tokens "
                                       "+ per layer 4 L^2 h per window (QK^T and AV), L = window length; "
                                       "unpadded windows, embeddings and softmax/layernorm not counted"}
    for k in ("torch-fp32", "onnx-fp32", "onnx-int8", "torch-bf16", "reference"):
        rows[k]["gflops_achieved"] = flops / wall[k] / 1e9 if k != "reference" else None
    if rss_subprocess:
        rss_alone_rows(rows, dirs, batch_size, shared, chunk, threads)
    del arms
    gc.collect()
    return result


def rss_alone_rows(rows: dict, dirs, batch_size: int, shared: Path, n: int, threads: int | None) -> None:
    """Each arm's peak RSS alone: loaded in a fresh process and run over the first `n` dev texts."""
    for k in ARMS:
        cmd = [sys.executable, __file__, "--_rss-arm", k, "--_dirs", *map(str, dirs),
               "--batch-size", str(batch_size), "--shared", str(shared), "--_n", str(n),
               "--threads", str(threads or 0)]
        # the child's own VmHWM: wait4's ru_maxrss would include this (large) process's RSS,
        # which a forked child's memory map starts out with
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
        rows[k]["peak_rss_alone_mib"] = float(p.stdout.split()[-1]) if p.returncode == 0 else None
        rows[k]["peak_rss_alone_texts"] = n


def table(res: dict) -> str:
    lines = [f"\n{res['shape']} / {res['task']}: {res['texts']} texts\n",
             "| arm | texts/s | tokens/s | vs reference | batch-1 p50 ms | batch-1 p99 ms | RSS added MiB | "
             "peak RSS alone MiB | GFLOP/s (est.) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in res["arms"].values():
        alone = r.get("peak_rss_alone_mib")
        g = r.get("gflops_achieved")
        lines.append(f"| {r['arm']} | {r['texts_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['vs_reference']:.2f} | "
                     f"{r['latency_p50_ms']:.1f} | {r['latency_p99_ms']:.1f} | {r['rss_added_mib']:.0f} | "
                     f"{'-' if alone is None else f'{alone:.0f}'} | {'-' if g is None else f'{g:.1f}'} |")
    return "\n".join(lines)


def rss_alone(a) -> None:
    """Child process: one arm loaded, warmed up and run over the first `_n` dev texts."""
    from lingshu.data import read_documents

    texts = [d.text for d in read_documents(Path(a.shared) / "data" / "cluener" / "dev.json").documents][: a._n]
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    arm = make_arm(a._rss_arm, tuple(Path(p) for p in a._dirs), a.batch_size, a.threads or None)
    arm.batch(texts)
    with open("/proc/self/status") as f:
        print([int(x.split()[1]) / 1024 for x in f if x.startswith("VmHWM:")][0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="tiny,base")
    ap.add_argument("--tasks", default="ner-globalpointer")
    ap.add_argument("--texts", type=int, default=2000, help="first N CLUENER dev texts (tiny shape)")
    ap.add_argument("--base-texts", type=int, default=128, help="first N dev texts for the base shape")
    ap.add_argument("--base-tasks", default="ner-globalpointer", help="tasks for the base shape")
    ap.add_argument("--latency", type=int, default=100, help="single texts for batch-1 latency")
    ap.add_argument("--base-latency", type=int, default=20, help="single texts for batch-1 latency, base shape")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and onnxruntime intra-op threads (0: each library's default)")
    ap.add_argument("--chunk", type=int, default=256, help="texts per interleaved chunk")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rss-subprocess", default="tiny",
                    help="shapes for which each arm's peak RSS is also measured alone in its own process ('' for none)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "work" / "onnx"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_speed.json"))
    ap.add_argument("--append", action="store_true", help="add this invocation's runs to an existing --out")
    ap.add_argument("--rss-only", action="store_true",
                    help="only (re)measure the per-arm peak RSS alone for the runs in --out of the --rss-subprocess shapes")
    ap.add_argument("--_rss-arm", dest="_rss_arm", help=argparse.SUPPRESS)
    ap.add_argument("--_dirs", dest="_dirs", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_n", dest="_n", type=int, default=256, help=argparse.SUPPRESS)
    a = ap.parse_args()
    logging.getLogger("lingshu").setLevel(logging.WARNING)
    if a._rss_arm:
        return rss_alone(a)
    import torch

    from lingshu.data import read_documents

    if a.threads:
        torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    dev = [d.text for d in read_documents(Path(a.shared) / "data" / "cluener" / "dev.json").documents]
    out = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "torch_threads": torch.get_num_threads(),
           "onnxruntime_threads": a.threads or "default",
           "cpus": os.cpu_count(), "load_average_start": os.getloadavg(), "dev_texts_available": len(dev),
           "versions": {}, "runs": []}
    import onnxruntime
    import transformers

    out["versions"] = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                       "transformers": transformers.__version__}
    if a.rss_only:
        res_all = json.loads(Path(a.out).read_text(encoding="utf-8"))
        for res in res_all["runs"]:
            if res["shape"] in a.rss_subprocess.split(","):
                base = Path(res["model_dir"]).parent
                rss_alone_rows(res["arms"], (base / "model", base / "onnx-fp32", base / "onnx-int8"), res["batch_size"],
                               Path(a.shared), res["chunk"], a.threads or None)
                res["rss_alone_command"] = " ".join([Path(sys.executable).name, *sys.argv])
                print(table(res))
        Path(a.out).write_text(json.dumps(res_all, indent=2, ensure_ascii=False), encoding="utf-8")
        return
    if a.append and Path(a.out).is_file():
        prev = json.loads(Path(a.out).read_text(encoding="utf-8"))
        out["earlier_invocations"] = prev.pop("earlier_invocations", []) + [{k: v for k, v in prev.items() if k != "runs"}]
        out["runs"] = prev["runs"]
    t0 = time.perf_counter()
    for shape in a.shapes.split(","):
        tiny = shape == "tiny"
        texts = dev[: a.texts if tiny else a.base_texts]
        for task in (a.tasks if tiny else a.base_tasks).split(","):
            res = bench(shape, task, texts, a.latency if tiny else a.base_latency,
                        a.chunk if tiny else min(a.chunk, 64), a.batch_size, work, Path(a.shared),
                        shape in a.rss_subprocess.split(","), a.threads or None)
            if shape == "base":
                res["matmul_peak"] = mm = matmul_peak()
                best = max(("torch-fp32", "onnx-fp32"), key=lambda k: res["arms"][k]["texts_per_s"])
                g = res["arms"][best]["gflops_achieved"]
                res["best_fp32_arm"] = {"arm": best, "gflops": g, "of_fp32_matmul_peak": g / mm["float32"]["gflops_best"]}
                print(f"matmul 2048^2: fp32 {mm['float32']['gflops_best']:.1f} GFLOP/s, bf16 "
                      f"{mm['bfloat16']['gflops_best']:.1f} GFLOP/s (best of {mm['float32']['reps']}); "
                      f"{best}: {g:.1f} GFLOP/s = {100 * g / mm['float32']['gflops_best']:.0f}% of the fp32 matmul peak")
            res["load_average_end"] = os.getloadavg()
            out["runs"].append(res)
            print(table(res), flush=True)
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    out["total_wall_s"] = time.perf_counter() - t0
    out["process_peak_rss_mib"] = peak_rss_mib()
    out["load_average_end"] = os.getloadavg()
    Path(a.out).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
