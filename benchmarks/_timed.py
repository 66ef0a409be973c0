"""Run a Python script or module with HF `Trainer.train` timed in wall-clock and process CPU time.

    python benchmarks/_timed.py OUT.json lingshu.cli train ...        # a module (run as __main__)
    python benchmarks/_timed.py OUT.json benchmarks/reference_ner.py ...  # a script

On a shared machine wall time depends on what else runs; CPU seconds of the process (all threads)
spent inside the training loop depend much less on it, so bench_ner.py reports tokens per CPU
second next to tokens per second. Nothing in the timed program is changed: `Trainer.train` is
wrapped before the program imports it, and every subclass (lingshu's NerTrainer) inherits the wrapper.
"""

import json
import runpy
import sys
import time
from pathlib import Path

import transformers

out, target, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
_train = transformers.Trainer.train


def train(self, *a, **k):
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        return _train(self, *a, **k)
    finally:
        out.write_text(json.dumps({"train_wall_s": time.perf_counter() - w0,
                                   "train_cpu_s": time.process_time() - c0}), encoding="utf-8")


transformers.Trainer.train = train
sys.argv = [target, *args]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
