"""`lingshu quickstart`: the whole job on built-in demo data, offline, in a few minutes on CPU.

Writes original demo sentences (lingshu.demo), builds a tiny encoder from scratch with a
character vocabulary, trains a GlobalPointer NER head, evaluates it per type, saves the model,
predicts entities in new sentences, and prints the commands to run on real data.
"""

from __future__ import annotations

import time
from pathlib import Path

NEXT_STEPS = """
Next, on real data (paths as in this repository's ../shared/data; use your own copies):

  lingshu data validate ../shared/data/cmeee/CMeEE_dev.json
  lingshu train task=ner-globalpointer model=tiny-modernbert data=cmeee trainer.max_steps=200 output_dir=runs/cmeee-gp
  lingshu train task=ner-crf model=tiny-bert data=cluener trainer.epochs=1 output_dir=runs/cluener-crf
  lingshu train task=ner-crf model=pretrained model.name_or_path=/path/to/chinese-roberta-wwm-ext data=cluener
  lingshu evaluate runs/cluener-crf ../shared/data/cluener/dev.json -o report.json
  lingshu predict {model} your_texts.txt -o predictions.jsonl

  lingshu train task=re model=tiny-modernbert data=cmeie output_dir=runs/cmeie        # SPO triples
  lingshu train task=pair model=tiny-bert data=kuake-qqr output_dir=runs/qqr          # query pairs
  lingshu adapt model=pretrained model.name_or_path=/path/to/chinese-roberta-wwm-ext data.train=corpus.txt \\
      masking.lexicon=../shared/data/lexicon/cmekg_terms.txt output_dir=runs/mlm       # MLM on domain text
"""


def quickstart(directory: str | Path = "lingshu-quickstart", steps: int = 300, model: str = "tiny-bert") -> int:
    import lingshu
    from lingshu.config import compose
    from lingshu.demo import write_demo
    from lingshu.training.train import run

    t0 = time.time()
    root = Path(directory)
    paths = write_demo(root)
    print(f"[1/4] wrote demo data to {root}/: {', '.join(p.name for p in paths.values())}")
    run_dir = root / "model"
    overrides = [
        f"model={model}", "task=ner-globalpointer",
        f"data.train={paths['train']}", f"data.dev={paths['dev']}",
        f"trainer.max_steps={steps}", "trainer.batch_size=16", f"trainer.eval_every={max(steps // 3, 1)}",
        "trainer.early_stopping_patience=0", "trainer.logging_steps=25", f"output_dir={run_dir}",
    ]
    cfg = compose(overrides)
    print(f"[2/4] training a from-scratch {model} + GlobalPointer for {steps} steps on CPU "
          f"(lingshu train {' '.join(overrides)})")
    run(cfg, run_dir)
    print(f"\n[3/4] model saved to {run_dir}/ (config.json, model.safetensors, tokenizer, metrics.jsonl, *.png)")
    nlp = lingshu.load(str(run_dir))
    texts = [t for t in paths["predict"].read_text(encoding="utf-8").splitlines() if t.strip()][:3]
    print("[4/4] predictions on new sentences:")
    for doc in nlp(texts):
        print(f"  {doc.text}")
        for e in doc.ents:
            print(f"      [{e.start}:{e.end}] {e.text} ({e.type})")
    print(f"\nquickstart finished in {time.time() - t0:.0f}s.")
    print(NEXT_STEPS.format(model=run_dir))
    return 0
