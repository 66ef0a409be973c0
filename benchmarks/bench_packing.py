"""ModernBERT on CPU: packed sequences (block-diagonal masks) vs length-grouped padded batches.

The issue: padding-free ModernBERT needs flash-attn (CUDA). On CPU we could pack several short
windows into one row with a block-diagonal 4D mask and per-sequence position ids. This measures
whether that beats what lingshu does by default (length-grouped batches with dynamic padding),
on the same windows, same model, same number of real tokens per step. Forward + backward.

    python benchmarks/bench_packing.py [--texts 3000] [--repeats 2]

Writes benchmarks/results/packing.json and prints a table with ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from lingshu.data import read_documents
from lingshu.modeling.backbone import load_tokenizer, scratch_config
from lingshu.text.features import Featurizer

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"


def batches_padded(lengths: list[int], tokens_per_batch: int, grouped: bool, seed: int = 0):
    order = sorted(range(len(lengths)), key=lambda i: lengths[i]) if grouped else list(range(len(lengths)))
    if not grouped:
        random.Random(seed).shuffle(order)
    out, cur, cur_max = [], [], 0
    for i in order:
        m = max(cur_max, lengths[i])
        if cur and m * (len(cur) + 1) > tokens_per_batch:
            out.append(cur)
            cur, m = [], lengths[i]
        cur.append(i)
        cur_max = m
    if cur:
        out.append(cur)
    if grouped:
        random.Random(seed).shuffle(out)
    return out


def rows_packed(lengths: list[int], row_len: int, seed: int = 0):
    """First-fit-decreasing packing of sequences into rows of at most row_len tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(row_len - lengths[i])
    random.Random(seed).shuffle(rows)
    return rows


def step_padded(model, seqs):
    n, t = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros((n, t), dtype=torch.long)
    mask = torch.zeros((n, t), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    (h * mask[..., None]).sum().backward()


def step_packed(model, rows):
    n, t = len(rows), max(sum(len(s) for s in r) for r in rows)
    ids = torch.zeros((n, t), dtype=torch.long)
    pos = torch.zeros((n, t), dtype=torch.long)
    seg = torch.full((n, t), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        o = 0
        for k, s in enumerate(r):
            ids[i, o : o + len(s)] = torch.tensor(s)
            pos[i, o : o + len(s)] = torch.arange(len(s))
            seg[i, o : o + len(s)] = k
            o += len(s)
    valid = seg >= 0
    mask4 = (seg[:, :, None] == seg[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    mask4 |= torch.eye(t, dtype=torch.bool)[None]  # padding rows attend to themselves: no NaN
    h = model(input_ids=ids, attention_mask=mask4[:, None], position_ids=pos).last_hidden_state
    (h * valid[..., None]).sum().backward()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--tokens-per-step", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    tok = load_tokenizer(str(SHARED / "vocab" / "bert-base-chinese"))
    docs = read_documents(SHARED / "cmeee" / "CMeEE_train.json").documents[: a.texts]
    fz = Featurizer(tok, ["x"], True, 128, 32)
    feats, *_ = fz.features(docs, with_labels=False)
    seqs = [f["input_ids"] for f in feats]
    lengths = [len(s) for s in seqs]
    params = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
                  max_position_embeddings=1024, global_attn_every_n_layers=3, local_attention=128)
    model = __import__("transformers").AutoModel.from_config(scratch_config("modernbert", params, tok, "sdpa"))
    model.train()
    plans = {
        "padded, random order": [[seqs[i] for i in b] for b in batches_padded(lengths, a.tokens_per_step, False)],
        "padded, length-grouped (lingshu default)": [[seqs[i] for i in b] for b in batches_padded(lengths, a.tokens_per_step, True)],
        "packed rows of 512, block-diagonal mask": None,
    }
    rows = [[seqs[i] for i in r] for r in rows_packed(lengths, 512)]
    per_step = max(1, a.tokens_per_step // 512)
    plans["packed rows of 512, block-diagonal mask"] = [rows[i : i + per_step] for i in range(0, len(rows), per_step)]
    real = sum(lengths)
    results = {}
    for name, steps in plans.items():
        fn = step_packed if name.startswith("packed") else step_padded
        if name.startswith("packed"):
            computed = sum(len(b) * max(sum(len(s) for s in r) for r in b) for b in steps)
        else:
            computed = sum(len(b) * max(len(s) for s in b) for b in steps)
        fn(model, steps[0])  # warm-up
        best = None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for b in steps:
                fn(model, b)
                model.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        results[name] = {"seconds": best, "real_tokens_per_s": real / best, "steps": len(steps),
                         "padding_share": 1 - real / computed}
    base = results["padded, length-grouped (lingshu default)"]["real_tokens_per_s"]
    print(f"tiny-modernbert fwd+bwd on {len(seqs)} CMeEE windows ({real} real tokens), {torch.get_num_threads()} threads\n")
    print("| batching | real tokens/s | padding share | vs length-grouped |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['real_tokens_per_s']:.0f} | {r['padding_share']:.1%} | {r['real_tokens_per_s'] / base:.2f}x |")
    out = HERE / "results" / "packing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
