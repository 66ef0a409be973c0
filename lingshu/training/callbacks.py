"""Trainer callbacks: a JSON-lines metrics log, and PNG curves at the end of training."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback


class JsonlMetricsLogger(TrainerCallback):
    """Appends every Trainer log (loss, learning rate, dev metrics) to `metrics.jsonl`.

    A resumed run first drops what the interrupted run logged after the checkpoint it resumes
    from (those steps are trained again), so the log holds each step once."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not state.global_step or not self.path.exists():
            return
        from lingshu.io import atomic_open

        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True)
                if _step(line) <= state.global_step]
        with atomic_open(self.path) as f:
            f.writelines(kept)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        rec = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **logs}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


class EpochSetter(TrainerCallback):
    """Tells a dataset with `set_epoch` (lingshu.text.re_features.NegativeResampler) which epoch
    starts, before its batches are drawn; from the trainer state, so a resumed run agrees."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(int((state.epoch or 0.0) + 1e-4))  # epoch is fractional mid-epoch (resume)


def plot_curves(log_history: list[dict], out_dir: str | Path, metric: str = "eval_f1",
                name: str = "dev_f1.png", ylabel: str = "dev F1 (strict span)") -> list[Path]:
    """Write loss.png (training loss by step) and a curve of `metric` by step (default dev_f1.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    written = []
    loss = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    dev = [(h["step"], h[metric]) for h in log_history if metric in h and "step" in h]
    for name, pts, ylabel in (("loss.png", loss, "training loss"), (name, dev, ylabel)):
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)
        written.append(out / name)
    return written
