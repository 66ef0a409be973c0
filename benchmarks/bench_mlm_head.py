"""The sparse MLM head against the full one: forward + backward time of one masked-LM step.

With a 250k-piece vocabulary (XLM-R style, multilingual-e5-small) projecting every token onto the
vocabulary dominates the step; `lingshu.pretrain.mlm.sparse_mlm_forward` projects only the masked
positions. Both arms run in one process, alternating, on the same batches; we report the ratio.

    python benchmarks/bench_mlm_head.py /path/to/checkpoint [--batch 16 --length 128 --steps 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--mask_prob", type=float, default=0.15)
    a = ap.parse_args()

    from lingshu.pretrain.mlm import load_mlm, sparse_mlm_forward

    torch.manual_seed(0)
    model = load_mlm(a.model).train()
    vocab = model.config.vocab_size
    times: dict[str, list[float]] = {"full": [], "sparse": []}
    losses: dict[str, list[float]] = {"full": [], "sparse": []}
    for step in range(a.steps + 1):
        ids = torch.randint(1000, vocab, (a.batch, a.length))
        labels = torch.where(torch.rand(ids.shape) < a.mask_prob, ids, torch.full_like(ids, -100))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
        for arm in ("full", "sparse") if step % 2 else ("sparse", "full"):
            torch.manual_seed(step)  # same dropout masks in both arms
            t0 = time.perf_counter()
            loss = model(**batch).loss if arm == "full" else sparse_mlm_forward(model, batch)["loss"]
            loss.backward()
            model.zero_grad(set_to_none=True)
            if step:  # step 0 warms up
                times[arm].append(time.perf_counter() - t0)
                losses[arm].append(float(loss))
    out = {"model": a.model, "vocab": vocab, "batch": a.batch, "length": a.length, "steps": a.steps,
           "median_step_s": {k: statistics.median(v) for k, v in times.items()},
           "loss_max_abs_diff": max(abs(x - y) for x, y in zip(losses["full"], losses["sparse"]))}
    out["speedup_sparse_over_full"] = out["median_step_s"]["full"] / out["median_step_s"]["sparse"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
