"""Relation (SPO) extraction: schema-constrained decoding, windows, training, evaluation, loading."""

import json
import logging

import pytest
import torch

from lingshu.decoding import decode_triples
from lingshu.schema import Document, Entity, Relation

PATTERNS = [("疾病", "临床表现", "症状"), ("疾病", "药物治疗", "药物"), ("症状", "相关（导致）", "疾病")]


def test_decoding_emits_only_schema_patterns_that_agree_with_mention_types():
    types = [{"疾病"}, {"症状"}, {"药物"}]
    pairs = [(0, 1), (0, 2), (1, 0), (2, 0)]
    probs = torch.zeros(len(pairs), len(PATTERNS))
    probs[0, 0] = 0.9  # 疾病 -临床表现-> 症状: in the schema, types agree
    probs[0, 1] = 0.95  # 疾病 -药物治疗-> 药物 on a (疾病, 症状) pair: object type disagrees
    probs[1, 1] = 0.4  # below the threshold
    probs[2, 2] = 0.8  # 症状 -相关（导致）-> 疾病: in the schema, agrees
    probs[3, 0] = 0.99  # (药物, 疾病) pair scored as 疾病 -临床表现-> 症状: both types disagree
    out = decode_triples(types, pairs, probs, PATTERNS, threshold=0.5)
    assert [(s, o, k) for s, o, k, _ in out] == [(0, 1, 0), (1, 0, 2)]
    assert out[0][3] == pytest.approx(0.9)
    # a mention the type head gave two types may take either pattern
    out = decode_triples([{"疾病"}, {"症状", "药物"}], [(0, 1)], torch.tensor([[0.9, 0.9, 0.0]]), PATTERNS)
    assert [k for _, _, k, _ in out] == [0, 1]


def _tiny_re_model(bert_tok, patterns=PATTERNS, max_len=64):
    from lingshu.modeling.backbone import scratch_config
    from lingshu.modeling.model import LingshuModel

    cfg = scratch_config("bert", {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                  "intermediate_size": 64}, bert_tok)
    cfg.lingshu = {"task": "re", "decoder": "span-type-pattern", "labels": ["疾病", "症状", "药物"],
                   "patterns": [list(p) for p in patterns], "max_seq_length": max_len, "stride": 8}
    torch.manual_seed(0)
    return LingshuModel(cfg).eval()


def test_every_head_module_starts_at_the_initializer_range(bert_tok):
    """Linear and embedding modules of the heads start at N(0, initializer_range), as the encoder's
    do; an embedding left at PyTorch's N(0, 1) adds vectors ~50x larger than the features it is
    added to (the pattern head's distance buckets)."""
    model = _tiny_re_model(bert_tok)
    std = model.config.initializer_range
    for name, mod in model.named_modules():
        if name.startswith("backbone") or not isinstance(mod, (torch.nn.Linear, torch.nn.Embedding)):
            continue
        w = mod.weight.detach()
        assert abs(float(w.std()) - std) < 0.5 * std, (name, float(w.std()))


def test_model_never_emits_a_triple_outside_the_schema(bert_tok):
    """Hand-set head weights: every span is a mention, every mention is 症状, and every pair
    scores every pattern at probability ~1. Only patterns whose types agree may come out, and
    here none does (no pattern has a 症状 subject and a 症状 object)."""
    from lingshu.tasks.re import RePipeline

    model = _tiny_re_model(bert_tok)
    with torch.no_grad():
        for m in (model.span_classifier.qk, model.span_classifier.bias):
            m.weight.zero_()
            m.bias.zero_()
        model.span_classifier.bias.bias[:2] = 5.0  # start + end bias: every span scores 5 > 0
        model.entity_type_classifier.out.weight.zero_()
        model.entity_type_classifier.out.bias.copy_(torch.tensor([-9.0, 9.0, -9.0]))  # 症状 only
        model.spo_pattern_classifier.out.weight.zero_()
        model.spo_pattern_classifier.out.bias.fill_(9.0)
    nlp = RePipeline(model, bert_tok, device="cpu")
    doc = nlp("咳嗽发热")
    assert doc.entities and all(e.type == "症状" for e in doc.entities)
    assert doc.relations == []
    # make the type head say 疾病 for spans starting at 0 is not expressible by a bias; instead
    # give every mention both 疾病 and 症状: now exactly pattern 0 (疾病 -> 症状) and pattern 2
    # (症状 -> 疾病) agree, never pattern 1 (its object type 药物 is no mention's type)
    with torch.no_grad():
        model.entity_type_classifier.out.bias.copy_(torch.tensor([9.0, 9.0, -9.0]))
    doc = nlp("咳嗽发热")
    preds = {r.predicate for r in doc.relations}
    assert preds == {"临床表现", "相关（导致）"}
    # each predicate's triple runs in the direction its pattern's types allow, never the other
    assert {(r.subject.type, r.predicate, r.object.type) for r in doc.relations} == \
        {("疾病", "临床表现", "症状"), ("症状", "相关（导致）", "疾病")}


def _doc(text, triples):
    rels = []
    for s, st, p, o, ot in triples:
        i, j = text.index(s), text.index(o)
        rels.append(Relation(Entity(i, i + len(s), st, s), p, Entity(j, j + len(o), ot, o)))
    return Document(text, sorted({r.subject for r in rels} | {r.object for r in rels}), relations=rels)


def test_pairs_across_windows_are_counted_and_merged_once(bert_tok):
    """Windows of 16 tokens (14 characters) overlapping by 8: a triple whose mentions are 32
    characters apart shares no window and is counted as not learnable; a close triple seen by
    two overlapping windows is predicted once."""
    from lingshu.text.re_features import ReFeaturizer

    text = "糖尿病" + "，" * 11 + "肺炎咳嗽" + "，" * 17 + "多饮。"  # windows [0,14) [6,20) [12,26) …
    doc = _doc(text, [("糖尿病", "疾病", "临床表现", "多饮", "症状"), ("肺炎", "疾病", "临床表现", "咳嗽", "症状")])
    fz = ReFeaturizer(bert_tok, ["疾病", "症状", "药物"], PATTERNS, max_seq_length=16, stride=8)
    feats, encs, wins, st = fz.features([doc])
    assert len(wins) > 3
    assert st.triples == 2 and st.cross_window == 1
    assert "share no window" in st.summary()
    positives = sum(1 for f in feats for ks in f["pair_labels"] if ks)
    assert positives >= 1  # the close pair (肺炎, 咳嗽) is learned, in every window holding both
    # merging: report the close triple from two windows (indices into each window's mentions)
    results = []
    for w in wins:
        u = {c: i for i, c in enumerate(encs[0].unit_char)}
        ms = []
        for name, typ in (("肺炎", "疾病"), ("咳嗽", "症状")):
            c0 = text.index(name)
            a, b = u[c0] - w.u0, u[c0 + len(name) - 1] - w.u0
            if a >= 0 and b < w.u1 - w.u0:
                ms.append((a, b, 1.0, {typ}, typ, None))
        trip = [(0, 1, 0, 0.7 + 0.01 * len(results))] if len(ms) == 2 else []
        results.append((ms if len(ms) == 2 else [], trip))
    windows_with_both = sum(1 for _, t in results if t)
    assert windows_with_both >= 2
    out = fz.to_re_documents([doc], encs, wins, results)[0]
    assert [r.key for r in out.relations] == [("肺炎", "临床表现", "咳嗽")]
    assert out.relations[0].score == pytest.approx(max(t[0][3] for _, t in results if t))


def _cmeie_subset(shared, tmp, n_train=160, n_dev=40):
    tr = (shared / "cmeie" / "CMeIE_train.jsonl").read_text(encoding="utf-8").splitlines()[:n_train]
    dv = (shared / "cmeie" / "CMeIE_dev.jsonl").read_text(encoding="utf-8").splitlines()[:n_dev]
    (tmp / "train.jsonl").write_text("\n".join(tr) + "\n", encoding="utf-8")
    (tmp / "dev.jsonl").write_text("\n".join(dv) + "\n", encoding="utf-8")
    return tmp / "train.jsonl", tmp / "dev.jsonl"


@pytest.fixture(scope="module")
def re_run(shared, tmp_path_factory):
    from lingshu.config import compose
    from lingshu.training.train import run

    tmp = tmp_path_factory.mktemp("re")
    train, dev = _cmeie_subset(shared, tmp)
    out = tmp / "run"
    cfg = compose(["task=re", "model=tiny-modernbert", f"data.train={train}", f"data.dev={dev}",
                   f"data.schema={shared / 'cmeie' / '53_schemas.json'}", "data.max_seq_length=128",
                   "trainer.max_steps=40", "trainer.batch_size=16", "trainer.learning_rate=1e-3",
                   "trainer.progress=false", "trainer.eval_every=1000", "trainer.logging_steps=5",
                   "model.config.num_hidden_layers=2"])
    report = run(cfg, out)
    return out, report, dev


def test_re_training_lowers_the_loss_and_saves_a_loadable_model(re_run, shared):
    import lingshu

    out, report, _ = re_run
    losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert len(losses) >= 5
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:2]) / 2, losses
    assert set(report) >= {"micro", "micro_typed", "per_predicate", "mentions"}
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    schema = [json.loads(x) for x in (shared / "cmeie" / "53_schemas.json").read_text(encoding="utf-8").splitlines()
              if x.strip()]
    assert len(cfg["lingshu"]["patterns"]) == 53
    assert {tuple(p) for p in cfg["lingshu"]["patterns"]} == {
        (s["subject_type"], s["predicate"], s["object_type"]) for s in schema}
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        heads = {k.split(".")[0] for k in f.keys() if not k.startswith("backbone.")}
    assert heads == {"span_classifier", "entity_type_classifier", "spo_pattern_classifier"}
    nlp = lingshu.load(str(out), device="cpu")
    doc = nlp("糖尿病患者常出现多饮、多尿。")
    assert isinstance(doc, Document) and isinstance(doc.relations, list)
    for r in doc.relations:
        assert (r.subject.type, r.predicate, r.object.type) in {tuple(p) for p in cfg["lingshu"]["patterns"]}


def test_re_evaluate_and_predict_cli(re_run, tmp_path):
    from lingshu.cli import main
    from lingshu.data import read_documents

    out, report, dev = re_run
    rep = tmp_path / "re_report.json"
    assert main(["evaluate", str(out), str(dev), "-o", str(rep), "--device", "cpu"]) == 0
    r = json.loads(rep.read_text(encoding="utf-8"))
    for key in ("micro", "micro_typed"):
        assert set(r[key]) >= {"precision", "recall", "f1"}
    # training's dev scoring = evaluate's: the same triples and the same mentions predicted
    assert r["micro"]["f1"] == pytest.approx(report["micro"]["f1"])
    assert r["micro"]["predicted"] == report["micro"]["predicted"]
    assert r["mentions"]["predicted"] == report["mentions"]["predicted"] > 0
    assert r["micro"]["support"] == sum(len(d.relations) for d in read_documents(dev).documents)
    assert isinstance(r["per_predicate"], dict)
    texts = tmp_path / "some.txt"
    texts.write_text("糖尿病患者常出现多饮、多尿。\n肺炎可用阿莫西林治疗。\n", encoding="utf-8")
    spo = tmp_path / "spo.jsonl"
    assert main(["predict", str(out), str(texts), "-o", str(spo), "--device", "cpu"]) == 0
    recs = [json.loads(x) for x in spo.read_text(encoding="utf-8").splitlines()]
    assert [x["text"] for x in recs] == ["糖尿病患者常出现多饮、多尿。", "肺炎可用阿莫西林治疗。"]
    assert all(isinstance(x["spo_list"], list) for x in recs)
    back = read_documents(spo, format="cmeie")  # CMeIE layout that lingshu reads back
    assert len(back.documents) == 2


def test_re_heads_reported_as_new_when_loading_an_mlm_checkpoint(bert_tok, tmp_path, caplog):
    from transformers import AutoModelForMaskedLM

    from lingshu.config import compose
    from lingshu.modeling.backbone import scratch_config
    from lingshu.training.train import build_model

    params = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    AutoModelForMaskedLM.from_config(scratch_config("modernbert", params, bert_tok)).save_pretrained(tmp_path / "mlm")
    bert_tok.save_pretrained(tmp_path / "mlm")
    cfg = compose(["task=re", "model=pretrained", f"model.name_or_path={tmp_path / 'mlm'}"])
    known = {"labels": ["疾病", "症状", "药物"], "patterns": [list(p) for p in PATTERNS],
             "pattern_pos_weight": [1.0] * 3}
    with caplog.at_level(logging.INFO, logger="lingshu"):
        model, _ = build_model(cfg, known, [])
    text = caplog.text
    for head in ("span_classifier", "entity_type_classifier", "spo_pattern_classifier"):
        assert head in text
    assert "head.dense.weight" in text  # ModernBertForMaskedLM's MLM head, unused
    assert "!!!" not in text


@pytest.mark.slow
def test_gplinker_option_trains_and_decodes_within_the_schema(shared, tmp_path):
    """task=re-gplinker: the token-pair alternative trains through the same path (loss falls),
    saves its three GlobalPointer heads, and its triples are schema patterns."""
    import lingshu
    from lingshu.config import compose
    from lingshu.training.train import run

    train, dev = _cmeie_subset(shared, tmp_path, n_train=120, n_dev=20)
    out = tmp_path / "run"
    cfg = compose(["task=re-gplinker", "model=tiny-bert", f"data.train={train}", f"data.dev={dev}",
                   f"data.schema={shared / 'cmeie' / '53_schemas.json'}", "data.max_seq_length=96",
                   "trainer.max_steps=30", "trainer.batch_size=8", "trainer.learning_rate=1e-3",
                   "trainer.progress=false", "trainer.eval_every=1000", "trainer.logging_steps=5",
                   "model.config.num_hidden_layers=1", "task.head_size=32"])
    report = run(cfg, out)
    assert set(report) >= {"micro", "micro_typed", "per_predicate"}
    losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert sum(losses[-2:]) / 2 < 0.7 * losses[0], losses
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        heads = {k.split(".")[0] for k in f.keys() if not k.startswith("backbone.")}
    assert heads == {"entity_classifier", "head_classifier", "tail_classifier"}
    nlp = lingshu.load(str(out), device="cpu")
    patterns = {tuple(p) for p in nlp.patterns}
    for doc in nlp.predict([Document(t) for t in ["糖尿病患者常出现多饮、多尿。", "肺炎可用阿莫西林治疗。"]]):
        for r in doc.relations:
            assert (r.subject.type, r.predicate, r.object.type) in patterns


def test_reloaded_re_model_trains_on_with_its_configured_weights(re_run):
    """The pair weights come from config.json after loading (an empty buffer once made the
    loss of a reloaded model astronomically large)."""
    from lingshu.data import read_documents
    from lingshu.modeling.backbone import load_tokenizer
    from lingshu.modeling.model import load_model
    from lingshu.text.re_features import ReFeaturizer

    out, _, dev = re_run
    model = load_model(str(out))
    spec = model.config.lingshu
    assert model.pattern_weights("cpu").tolist() == pytest.approx(spec["pattern_pos_weight"])
    assert max(spec["pattern_pos_weight"]) > 1.0  # rare patterns and positives weigh more
    fz = ReFeaturizer(load_tokenizer(str(out)), spec["labels"], spec["patterns"], spec["max_seq_length"], spec["stride"])
    feats, *_ = fz.features(read_documents(dev).documents[:8])
    loss = model(**fz.collate(feats)).loss
    loss = float(loss.detach())
    assert 0 < loss < 100


def test_task_labels_narrower_than_the_data_are_skipped_and_counted(bert_tok):
    from lingshu.text.re_features import ReFeaturizer

    doc = _doc("糖尿病患者多饮，可用胰岛素治疗。", [("糖尿病", "疾病", "临床表现", "多饮", "症状"),
                                            ("糖尿病", "疾病", "药物治疗", "胰岛素", "药物")])
    fz = ReFeaturizer(bert_tok, ["疾病", "药物"], PATTERNS, max_seq_length=64, stride=8)
    feats, _, _, st = fz.features([doc])
    assert st.outside_schema == 1  # the 症状 triple: its type is not a label
    assert len(feats[0]["mentions"]) == 2  # 糖尿病, 胰岛素; no 症状 mention
    assert sum(1 for ks in feats[0]["pair_labels"] if ks) == 1


def test_mentions_on_a_cut_window_edge_are_dropped(bert_tok):
    """A mention that touches the cut edge of a window may be the half of a longer one: it is
    not reported from that window (the overlapping neighbour sees it whole)."""
    from lingshu.text.re_features import ReFeaturizer

    text = "，" * 10 + "急性胰腺炎" + "，" * 20
    fz = ReFeaturizer(bert_tok, ["疾病", "症状", "药物"], PATTERNS, max_seq_length=16, stride=8)
    _, encs, wins, _ = fz.features([Document(text)], with_labels=False)
    cut = next(w for w in wins if w.u0 <= 10 < w.u1 <= 15 and not w.is_last)  # ends inside the mention
    results = []
    for w in wins:
        if w is cut:  # "急性" seen at the right edge of this window
            results.append(([(10 - w.u0, w.u1 - 1 - w.u0, 5.0, {"疾病"}, "疾病", None)], []))
        elif w.u0 <= 10 and 14 < w.u1:
            results.append(([(10 - w.u0, 14 - w.u0, 4.0, {"疾病"}, "疾病", None)], []))
        else:
            results.append(([], []))
    out = fz.to_re_documents([Document(text)], encs, wins, results)[0]
    assert [e.text for e in out.entities] == ["急性胰腺炎"]


def test_data_validate_counts_triples_outside_a_schema(shared, tmp_path, capsys):
    from lingshu.cli import main
    from lingshu.data import read_documents

    train, dev = _cmeie_subset(shared, tmp_path, n_train=1, n_dev=50)
    schema = tmp_path / "two.json"
    schema.write_text('{"subject_type": "疾病", "predicate": "临床表现", "object_type": "症状"}\n'
                      '{"subject_type": "疾病", "predicate": "药物治疗", "object_type": "药物"}\n', encoding="utf-8")
    docs = read_documents(dev).documents
    keep = {("疾病", "临床表现", "症状"), ("疾病", "药物治疗", "药物")}
    n = sum(len(d.relations) for d in docs)
    inside = sum((r.subject.type, r.predicate, r.object.type) in keep for d in docs for r in d.relations)
    assert 0 < inside < n
    assert main(["data", "validate", str(dev), "--schema", str(schema)]) == 0
    out = capsys.readouterr().out
    assert f"{inside:,} of {n:,} triples fit its patterns; {n - inside:,} do not" in out
    assert main(["data", "validate", str(dev), "--schema", str(schema), "--strict"]) == 1


def test_negative_pairs_are_drawn_again_every_epoch(bert_tok):
    """With more negatives than `max_pairs` allows, each epoch trains on another draw of them
    (the positives always stay); a draw depends only on (seed, epoch, window), so a resumed run
    repeats the uninterrupted one's, and the epoch comes from the trainer state."""
    from types import SimpleNamespace

    from lingshu.text.re_features import ReFeaturizer
    from lingshu.training.callbacks import EpochSetter

    text = "糖尿病患者出现多饮多尿乏力消瘦，可用二甲双胍。"
    doc = _doc(text, [("糖尿病", "疾病", "临床表现", "多饮", "症状"), ("糖尿病", "疾病", "临床表现", "多尿", "症状"),
                      ("糖尿病", "疾病", "临床表现", "乏力", "症状"), ("糖尿病", "疾病", "临床表现", "消瘦", "症状"),
                      ("糖尿病", "疾病", "药物治疗", "二甲双胍", "药物")])
    fz = ReFeaturizer(bert_tok, ["疾病", "症状", "药物"], PATTERNS, max_seq_length=64, stride=8, max_pairs=8, seed=3)
    feats, _, _, st = fz.features([doc])
    assert st.negatives_dropped > 0 and len(feats) == 1
    ds = fz.train_dataset(feats)
    draws = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        f = ds[0]
        assert len(f["pairs"]) == 8
        pos = [p for p, ks in zip(f["pairs"], f["pair_labels"]) if ks]
        assert len(pos) == 5  # every positive, every epoch
        draws.append(frozenset(p for p, ks in zip(f["pairs"], f["pair_labels"]) if not ks))
    assert len(set(draws)) > 1  # the negatives change between epochs
    assert draws[0] == frozenset(p for p, ks in zip(feats[0]["pairs"], feats[0]["pair_labels"]) if not ks)
    again = fz.train_dataset(fz.features([doc])[0])
    again.set_epoch(2)
    assert frozenset(p for p, ks in zip(again[0]["pairs"], again[0]["pair_labels"]) if not ks) == draws[2]
    cb = EpochSetter(again)
    for state_epoch, want in ((0.0, 0), (1.0, 1), (1.5, 1), (2.99999999, 3)):
        cb.on_epoch_begin(None, SimpleNamespace(epoch=state_epoch), None)
        assert again.epoch == want
    batch = fz.collate([ds[0]])
    assert batch["pairs"].shape[1] == 8 and int(batch["pair_labels"].sum()) == 5
