"""Speed of the data layer and of the MLM masking collator, on this machine, as figures (the
test suite checks behaviour only; timings on a shared CI machine say nothing reliable).

    python benchmarks/bench_data_speed.py [--shared ../shared] [--out benchmarks/results/data_speed.json]

- reading CMeEE train (15,000 records, validated): seconds, median of 3 reads;
- `EntityAwareWWMCollator` on 32 x 128-token rows of the shared corpus: median ms per batch over
  30 calls, for char, entity-wwm, and entity-wwm with replacement / deletion / entity masking.
  A training step of any encoder takes far longer than a few ms, so the collator is never the
  bottleneck while it stays well below that.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "data_speed.json"))
    a = ap.parse_args()
    shared = Path(a.shared) / "data"

    from transformers import AutoTokenizer

    from lingshu.data import read_documents
    from lingshu.pretrain.lexicon import Segmenter, load_lexicon
    from lingshu.pretrain.masking import EntityAwareWWMCollator, encode_for_mlm

    out: dict = {}
    reads = []
    for _ in range(3):
        t = time.perf_counter()
        res = read_documents(shared / "cmeee" / "CMeEE_train.json")
        reads.append(time.perf_counter() - t)
    out["cmeee_train_read_s"] = statistics.median(reads)
    out["cmeee_train_records"] = len(res.documents)
    print(f"CMeEE train: {len(res.documents):,} records read in {out['cmeee_train_read_s']:.2f} s (median of 3)")

    tok = AutoTokenizer.from_pretrained(str(shared / "vocab" / "bert-base-chinese"))
    terms = load_lexicon(shared / "lexicon" / "cmekg_terms.txt")
    texts = []
    for name in ("medical_qa_dialogue.txt", "medical_clinical_misc.txt", "csl_abstracts.txt"):
        with open(shared / "corpus" / name, encoding="utf-8") as fh:
            texts += [line.rstrip("\n")[:300] for _, line in zip(range(200), fh)]
    examples = encode_for_mlm(tok, Segmenter(lexicon_terms=terms), texts, max_length=128)
    full = [e for e in examples if len(e["input_ids"]) == 128][:32]
    out["collator_ms_per_batch"] = {}
    for strategy, kw in [("char", {}), ("entity-wwm", {}),
                         ("entity-wwm", {"replace_prob": 0.1, "delete_prob": 0.05, "entity_mask_prob": 0.1})]:
        col = EntityAwareWWMCollator(tok, strategy=strategy, seed=11, lexicon_terms=terms, **kw)
        col(full)  # warm the replacement-term cache
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            col(full)
            times.append(time.perf_counter() - t0)
        name = strategy + ("+" + ",".join(f"{k}={v}" for k, v in kw.items()) if kw else "")
        out["collator_ms_per_batch"][name] = 1000 * statistics.median(times)
        print(f"collator {name}: {out['collator_ms_per_batch'][name]:.2f} ms per {len(full)}x128 batch")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
