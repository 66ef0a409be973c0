"""Training health: token-collapse detection, 'predicted nothing' warnings, and the head's prior
initialisation that keeps a pretrained encoder from collapsing (issue: real pretrained encoders)."""

import math
import os
from pathlib import Path

import pytest
import torch
from conftest import train_run

from lingshu.tasks import get_task
from lingshu.training.health import collapse_warning, token_geometry


def tiny_encoder(tok):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=128), add_pooling_layer=False)


TEXTS = ["患者因发热三天就诊于呼吸内科。", "糖尿病患者常出现多饮、多尿。", "北京市朝阳区人民医院", "阿莫西林胶囊0.5g口服"]


def test_token_geometry_tells_a_collapsed_encoder(bert_tok):
    enc = tiny_encoder(bert_tok)
    healthy = token_geometry(enc, bert_tok, TEXTS)
    assert healthy["token_cosine"] < 0.9 and healthy["token_std"] > 0.1
    assert collapse_warning(healthy, None) is None
    with torch.no_grad():  # the failure seen on real weights: the last LayerNorm outputs one vector
        enc.encoder.layer[-1].output.LayerNorm.weight.zero_()
        enc.encoder.layer[-1].output.LayerNorm.bias.normal_()
    dead = token_geometry(enc, bert_tok, TEXTS)
    assert dead["token_cosine"] > 0.999 and dead["token_std"] < 1e-4
    w = collapse_warning(dead, healthy, step=56)
    assert w and "collapsed at step 56" in w and "cosine 1.0000" in w
    # an encoder that starts collapsed is not a training failure
    assert collapse_warning(dead, dead) is None
    assert enc.training  # token_geometry restores the mode it found


def test_prediction_warning():
    ner, re_, pair = get_task("ner"), get_task("re"), get_task("pair")
    assert "no entity" in ner.prediction_warning({"micro": {"predicted": 0, "support": 12}, "documents": 5})
    assert "no triple" in re_.prediction_warning({"micro": {"predicted": 0, "support": 3}, "documents": 2})
    assert ner.prediction_warning({"micro": {"predicted": 4, "support": 12}}) is None
    same = {"per_label": {"0": {"predicted": 0}, "1": {"predicted": 9}, "2": {"predicted": 0}}, "documents": 9}
    assert "same label ('1')" in pair.prediction_warning(same)
    same["per_label"]["0"]["predicted"] = 1
    assert pair.prediction_warning(same) is None


def _model(task, decoder, labels, tok, patterns=None):
    from lingshu.modeling.model import LingshuModel
    from lingshu.modeling.backbone import scratch_config

    cfg = scratch_config("bert", {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                  "intermediate_size": 64}, tok)
    cfg.lingshu = {"task": task, "decoder": decoder, "labels": labels, "max_seq_length": 64, "stride": 16}
    return LingshuModel(cfg)


def test_init_priors_sets_log_label_frequencies(bert_tok, shared):
    from lingshu.data import read_documents
    from lingshu.schema import LabelSet, bios_tags
    from lingshu.text.features import Featurizer

    docs = read_documents(shared / "cluener" / "dev.json").documents[:200]
    labels = LabelSet.from_documents(docs).labels
    model = _model("ner", "crf", labels, bert_tok)
    feats = Featurizer(bert_tok, labels, False, 64, 16).features(docs)[0]
    model.init_priors(feats)
    tags = bios_tags(labels)
    probs = model.head.proj.bias.exp()
    assert tags[int(probs.argmax())] == "O" and float(probs.max()) > 0.5  # most characters are O
    n_o = sum(t == tags.index("O") for f in feats for t in f["labels"])
    n = sum(len(f["labels"]) for f in feats)
    assert math.isclose(float(probs[tags.index("O")]), (n_o + 1) / (n + len(tags)), rel_tol=1e-4)

    gp = _model("ner", "globalpointer", labels, bert_tok)
    gfeats = Featurizer(bert_tok, labels, True, 64, 16).features(docs)[0]
    gp.init_priors(gfeats)
    gp.eval()
    b = Featurizer(bert_tok, labels, True, 64, 16).collate(gfeats[:8])
    with torch.no_grad():
        logits = gp(**b).logits
    valid = logits > -1e3
    # every span starts near its type's log prior (far below 0: "not an entity"), not at 0
    assert float(logits[valid].mean()) < -4.0


def test_init_priors_pairs(bert_tok):
    model = _model("pair", "cls", ["0", "1", "2"], bert_tok)
    model.init_priors([{"label": 0}] * 6 + [{"label": 1}] * 3 + [{"label": 2}])
    assert torch.allclose(model.classifier.bias.exp(), torch.tensor([7 / 13, 4 / 13, 2 / 13]), atol=1e-5)


@pytest.mark.slow
def test_training_warns_when_nothing_is_predicted(cluener_subset, tmp_path):
    """A run that cannot learn (0 steps of real learning rate) says so in train_summary.json."""
    import json

    train_run(tmp_path, "tiny-bert", "ner-globalpointer", *cluener_subset, steps=2,
              extra=["model.config.num_hidden_layers=1", "trainer.learning_rate=1e-9", "trainer.eval_every=2"])
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["token_geometry_start"]["token_cosine"] > -1
    assert any("predicted no entity" in w for w in summary["warnings"]), summary["warnings"]


REAL = os.environ.get("LINGSHU_REAL_MODEL")  # e.g. a multilingual-e5-small directory (../shared/tools/realweights)


@pytest.mark.slow
@pytest.mark.skipif(not REAL or not Path(REAL or "").exists(), reason="set LINGSHU_REAL_MODEL to a real checkpoint")
@pytest.mark.parametrize("priors,collapses", [(True, False), (False, True)])
def test_real_weights_encoder_does_not_collapse(priors, collapses, cluener_subset, tmp_path):
    """The recipe of the issue (lr 2e-4, batch 32) on a real checkpoint: with the head's priors the
    token vectors keep their spread; without them (the code before the fix) they collapse."""
    import json

    train_run(tmp_path, "pretrained", "ner-crf", *cluener_subset, steps=40,
              extra=[f"model.name_or_path={REAL}", "trainer.learning_rate=2e-4", "trainer.batch_size=32",
                     "trainer.eval_every=40", "trainer.warmup=0.25", f"trainer.init_priors={str(priors).lower()}"]
              + ([] if priors else ["trainer.head_lr_multiplier=10"]))
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    cos = [r["eval_token_cosine"] for r in recs if "eval_token_cosine" in r][-1]
    assert (cos > 0.99) == collapses, cos


@pytest.mark.parametrize("overrides,expected", [
    (["task=ner-crf", "model=pretrained"], 10.0),         # tag heads: 10x everywhere
    (["task=ner-softmax", "model=chinese-roberta-wwm-ext"], 10.0),
    (["task=pair", "model=pretrained"], 1.0),              # pair classifier on a pretrained encoder
    (["task=ner-globalpointer", "model=pretrained"], 10.0),  # span heads: 10x everywhere
    (["task=re", "model=pretrained"], 10.0),
    (["task=ner-crf", "model=tiny-bert"], 10.0),           # from scratch
    (["task=ner-globalpointer", "model=pretrained", "trainer.head_lr_multiplier=3"], 3.0),
])
def test_head_lr_multiplier_defaults(overrides, expected):
    from lingshu.config import compose
    from lingshu.training.train import head_lr_multiplier

    assert head_lr_multiplier(compose(overrides + ["model.name_or_path=some/dir"])) == expected
