"""Integration: tiny from-scratch models learn CLUENER (loss falls, dev F1 > 0), and the model
directory they leave behind is complete."""

import json

import pytest
from conftest import train_run


def losses(run_dir):
    recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in recs if "loss" in r]


def check_run(run_dir, report):
    ls = losses(run_dir)
    assert len(ls) >= 3
    assert ls[-1] < 0.5 * ls[0], ls  # loss falls
    assert report["micro"]["f1"] > 0.0
    for f in ("config.json", "model.safetensors", "tokenizer.json", "lingshu_config.yaml",
              "train_summary.json", "loss.png", "dev_f1.png"):
        assert (run_dir / f).exists(), f
    assert not list(run_dir.glob("checkpoint-*"))  # cleaned after success by default
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["lingshu"]["task"] == "ner" and len(cfg["lingshu"]["labels"]) == 10


def test_tiny_bert_crf(crf_model):
    run_dir, report = crf_model
    check_run(run_dir, report)
    assert json.loads((run_dir / "config.json").read_text())["lingshu"]["decoder"] == "crf"


@pytest.mark.parametrize("task", ["ner-softmax", "ner-globalpointer"])
def test_tiny_modernbert(task, cluener_subset, tmp_path):
    report = train_run(tmp_path, "tiny-modernbert", task, *cluener_subset)
    check_run(tmp_path, report)
    cfg = json.loads((tmp_path / "config.json").read_text())
    # the architecture is ModernBERT's, as configured: alternating local/global attention, no biases
    assert cfg["model_type"] == "modernbert"
    assert cfg["local_attention"] == 128 and cfg["mlp_bias"] is False
    assert cfg["layer_types"][:3] == ["full_attention", "sliding_attention", "sliding_attention"]
    assert cfg["pad_token_id"] == 0 and cfg["cls_token_id"] == 2 and cfg["sep_token_id"] == 3
