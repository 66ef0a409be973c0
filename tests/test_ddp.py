"""Data parallel training: 2 CPU processes (gloo) through torchrun, a few steps."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_two_process_gloo(cluener_subset, tmp_path):
    train, dev = cluener_subset
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lingshu.cli", "train", "task=ner-softmax", "model=tiny-bert",
           "model.config.num_hidden_layers=2", f"data.train={train}", f"data.dev={dev}",
           "trainer.max_steps=6", "trainer.batch_size=8", "trainer.logging_steps=2",
           "trainer.progress=false", "trainer.eval_every=1000", f"output_dir={out}"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["global_step"] == 6
    assert summary["world_size"] == 2  # two ranks shared the work: 2 x 8 windows a step
    assert summary["samples_seen"] == 6 * 2 * 8
    assert (out / "model.safetensors").exists()
    # dev is decoded by rank 0 alone (once, at the end), and both ranks log: one line, not two
    assert (r.stdout + r.stderr).count("documents decoded at step") == 1, r.stderr[-3000:]
    assert summary["dev"]["documents"] == 200 and "f1" in summary["dev"]["micro"]
