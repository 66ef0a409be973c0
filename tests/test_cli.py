"""The user-facing surface: lingshu.load, evaluate/predict/data commands, errors, key report,
quickstart."""

import json
import subprocess
import sys

import pytest

import lingshu
from lingshu.cli import main
from lingshu.data import read_documents


def test_load_and_call(crf_model):
    run_dir, _ = crf_model
    nlp = lingshu.load(str(run_dir))
    text = "北京大学的张三在上海市浦东新区工作。" * 12  # longer than max_seq_length=64: windows
    doc = nlp(text)
    assert isinstance(doc, lingshu.Document) and doc.text == text
    keys = [e.key for e in doc.entities]
    assert len(keys) == len(set(keys))  # window overlaps merged: no entity twice
    for e in doc.entities:
        assert 0 <= e.start < e.end <= len(text) and e.type in nlp.labels
    docs = nlp(["第一句。", text])
    assert [d.text for d in docs] == ["第一句。", text]


def test_evaluate_matches_training_report(crf_model, cluener_subset, tmp_path, capsys):
    run_dir, train_report = crf_model
    out = tmp_path / "report.json"
    assert main(["evaluate", str(run_dir), str(cluener_subset[1]), "-o", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert set(rep["micro"]) >= {"precision", "recall", "f1"}
    assert len(rep["per_type"]) == 10 and "name" in rep["per_type"]
    assert rep["micro"]["f1"] == pytest.approx(train_report["micro"]["f1"])
    assert rep["micro"]["support"] == sum(len(d.entities) for d in read_documents(cluener_subset[1]).documents)
    printed = capsys.readouterr().out
    assert "micro" in printed and "seqeval" in printed and "IOBES" in printed


def test_predict_text_and_same_layout(crf_model, cluener_subset, tmp_path):
    run_dir, _ = crf_model
    txt = tmp_path / "some.txt"
    txt.write_text("张三在北京工作。\n\n李四去了上海。\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(run_dir), str(txt), "-o", str(out)]) == 0
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # one record per input line, the blank line an empty one: line n out is line n in
    assert [r["text"] for r in recs] == ["张三在北京工作。", "", "李四去了上海。"]
    assert all("entities" in r for r in recs) and recs[1]["entities"] == []
    # a CLUENER file in, a CLUENER file out (label dict, inclusive ends)
    out2 = tmp_path / "pred_cluener.json"
    assert main(["predict", str(run_dir), str(cluener_subset[1]), "-o", str(out2)]) == 0
    first = json.loads(out2.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) >= {"text", "label"}
    for typ, ents in first["label"].items():
        for ent, spans in ents.items():
            for s, e in spans:
                assert first["text"][s:e + 1] == ent


def test_predict_never_writes_a_layout_that_loses_the_predictions(crf_model, tmp_path, capsys):
    """An NER model given a CMeIE-layout file (which holds triples, not entities): the default
    output is one that holds entities, and asking for CMeIE is refused before anything is written."""
    run_dir, _ = crf_model
    src = tmp_path / "in.jsonl"
    texts = ["北京大学的张三在上海市工作。", "李四去了广州市。"]
    src.write_text("".join(json.dumps({"text": t, "spo_list": []}, ensure_ascii=False) + "\n" for t in texts),
                   encoding="utf-8")
    nlp = lingshu.load(str(run_dir), device="cpu")
    want = [[(e.start, e.end, e.type) for e in nlp(t).entities] for t in texts]
    assert any(want), "the model must predict something for this test to mean anything"
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(run_dir), str(src), "-o", str(out), "--device", "cpu"]) == 0
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [[(e["start"], e["end"], e["type"]) for e in r["entities"]] for r in recs] == want
    assert "(spans layout)" in capsys.readouterr().out
    refused = tmp_path / "refused.jsonl"
    assert main(["predict", str(run_dir), str(src), "-o", str(refused), "--output-format", "cmeie"]) == 2
    assert "cannot be written as 'cmeie'" in capsys.readouterr().err and not refused.exists()


def test_data_commands(shared, tmp_path, capsys):
    assert main(["data", "stats", str(shared / "cluener" / "dev.json")]) == 0
    assert "address" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"text": "张三", "label": {"name": {"张三": [[0, 1]]}}}\n{"text": "李四", "label": {"name": {"王五": [[0, 1]]}}}\n',
                   encoding="utf-8")
    assert main(["data", "validate", str(bad)]) == 1  # a skipped record fails validation
    out = capsys.readouterr().out
    assert "bad.json:2" in out and "1 skipped" in out and "FAILED: 1 record skipped" in out
    good = tmp_path / "good.json"
    good.write_text(bad.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert main(["data", "validate", str(good)]) == 0
    assert "OK: every record kept" in capsys.readouterr().out
    assert main(["data", "validate", "--strict", str(bad)]) == 1
    assert "bad.json:2" in capsys.readouterr().err
    assert main(["data", "validate", "--labels", "person", str(shared / "cluener" / "dev.json")]) == 1
    assert "unknown_label" in capsys.readouterr().out


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "lingshu.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_help_and_unknown_override():
    r = run_cli("--help")
    assert r.returncode == 0 and "quickstart" in r.stdout and "evaluate" in r.stdout
    r = run_cli("train", "--help")
    assert r.returncode == 0 and "task=" in r.stdout and "ner-globalpointer" in r.stdout
    r = run_cli("train", "trainer.epohcs=1")
    assert r.returncode != 0 and "epohcs" in (r.stdout + r.stderr)
    r = run_cli("train", "task=ner-nope")
    assert r.returncode != 0 and "ner-nope" in (r.stdout + r.stderr)


def test_offline_hub_name_gives_clear_error():
    from lingshu.modeling.backbone import OfflineModelError, load_pretrained_backbone

    with pytest.raises(OfflineModelError, match="model.name_or_path="):
        load_pretrained_backbone("hfl/chinese-roberta-wwm-ext")


@pytest.mark.parametrize("arch", ["bert", "modernbert"])
def test_key_report_from_mlm_checkpoint(arch, bert_tok, tmp_path):
    from transformers import AutoModelForMaskedLM

    from lingshu.modeling.backbone import (
        format_key_report,
        load_pretrained_backbone,
        scratch_config,
    )

    params = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
    mlm = AutoModelForMaskedLM.from_config(scratch_config(arch, params, bert_tok))
    mlm.save_pretrained(tmp_path)
    bert_tok.save_pretrained(tmp_path)
    backbone, rep = load_pretrained_backbone(str(tmp_path))
    assert rep["missing"] == [] and rep["unused_other"] == []
    expected = "cls.predictions" if arch == "bert" else "head.dense.weight"
    assert any(expected in k for k in rep["unused_expected"])
    text = format_key_report(rep, ["head.proj.weight"], str(tmp_path))
    assert "!!!" not in text and "head.proj.weight" in text
    # the encoder weights really are the checkpoint's
    src = {k: v for k, v in mlm.state_dict().items()}
    emb = [k for k in src if k.endswith("embeddings.word_embeddings.weight") or k.endswith("embeddings.tok_embeddings.weight")][0]
    assert (backbone.get_input_embeddings().weight == src[emb]).all()


@pytest.mark.slow
def test_train_from_pretrained_dir(bert_tok, cluener_subset, tmp_path):
    """model.name_or_path=DIR: the tokenizer and the architecture come from the checkpoint."""
    from conftest import train_run
    from transformers import AutoModelForMaskedLM

    from lingshu.modeling.backbone import scratch_config

    ckpt = tmp_path / "ckpt"
    params = {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 128}
    AutoModelForMaskedLM.from_config(scratch_config("bert", params, bert_tok)).save_pretrained(ckpt)
    bert_tok.save_pretrained(ckpt)
    out = tmp_path / "run"
    train_run(out, "tiny-bert", "ner-softmax", *cluener_subset, steps=4, extra=[f"model.name_or_path={ckpt}"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 3 and cfg["hidden_size"] == 64 and cfg["vocab_size"] == 21128
    assert cfg["lingshu"]["tag_decoding"] == "constrained"  # a new softmax model decodes well-formed paths


@pytest.mark.slow
def test_quickstart(tmp_path):
    r = run_cli("quickstart", "--dir", str(tmp_path / "qs"), "--steps", "40", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Dev set" in r.stdout and "micro" in r.stdout and "lingshu train" in r.stdout
    assert (tmp_path / "qs" / "model" / "model.safetensors").exists()
    assert len(json.loads((tmp_path / "qs" / "demo_train.json").read_text(encoding="utf-8"))) >= 200


def test_precision_follows_training_and_can_be_asked_for(crf_model):
    """The forward runs in fp32 on CPU unless asked; on CUDA in what the model was trained with
    (stored in config.json); a directory without the key keeps the old CUDA default."""
    import torch

    from lingshu.inference.pipeline import pick_precision

    run_dir, _ = crf_model
    spec = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["lingshu"]
    assert spec["train_precision"] in ("fp32", "bf16")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert pick_precision(None, cpu, {"train_precision": "bf16"}) == "fp32"
    assert pick_precision(None, cuda, {"train_precision": "fp32"}) == "fp32"
    assert pick_precision(None, cuda, {"train_precision": "bf16"}) == "bf16"
    assert pick_precision("bf16", cpu, {}) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        pick_precision("fp8", cpu, {})
    text = "北京大学的张三在上海市浦东新区工作。"
    fp32 = lingshu.load(str(run_dir), device="cpu")
    bf16 = lingshu.load(str(run_dir), device="cpu", precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    for pipe, dtype in ((fp32, torch.float32), (bf16, torch.bfloat16)):
        seen = []
        linear = next(m for m in pipe.model.backbone.modules() if isinstance(m, torch.nn.Linear))
        hook = linear.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        try:
            assert pipe(text).text == text
        finally:
            hook.remove()
        assert seen == [dtype]  # the encoder's first matmul (LayerNorm and heads may cast up)
