"""`lingshu adapt`: a few MLM steps from scratch lower the loss; the saved model loads with
AutoModelForMaskedLM, answers fill-mask, and fine-tunes through `lingshu train`."""

import json

import pytest

from lingshu.pretrain.mlm import fill_mask, pack_examples, split_heldout


def test_pack_examples_keeps_words_whole():
    a = {"input_ids": [101, 5, 6, 102], "word_ids": [None, 0, 0, None], "entity_words": [0]}
    b = {"input_ids": [101, 7, 8, 9, 102], "word_ids": [None, 0, 1, 1, None], "entity_words": [1]}
    c = {"input_ids": [101, 10, 102], "word_ids": [None, 0, None], "entity_words": []}
    packed = pack_examples([a, b, c], max_length=8)
    assert packed[0]["input_ids"] == [101, 5, 6, 102, 7, 8, 9, 102]
    assert packed[0]["word_ids"] == [None, 0, 0, None, 1, 2, 2, None]
    assert packed[0]["entity_words"] == [0, 2]
    assert packed[1]["input_ids"] == [101, 10, 102]  # did not fit: a new sequence


def test_split_heldout_spreads_evenly():
    lines = [str(i) for i in range(100)]
    train, held = split_heldout(lines, 10)
    assert held == [str(i) for i in range(0, 100, 10)] and len(train) == 90
    assert split_heldout(lines[:5], 10) == (lines[:5], [])


@pytest.fixture(scope="module")
def mlm_dir(shared, tmp_path_factory):
    from lingshu.config import compose
    from lingshu.pretrain.mlm import run_adapt

    tmp = tmp_path_factory.mktemp("adapt")
    corpus = tmp / "corpus.txt"
    lines = (shared / "corpus" / "medical_qa_dialogue.txt").read_text(encoding="utf-8").splitlines()[:400]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lexicon = tmp / "terms.txt"
    terms = (shared / "lexicon" / "cmekg_terms.txt").read_text(encoding="utf-8").splitlines()[:3000]
    lexicon.write_text("\n".join(terms) + "\n", encoding="utf-8")
    out = tmp / "mlm"
    cfg = compose(["model=tiny-bert", "model.config.num_hidden_layers=2", f"model.tokenizer={shared / 'vocab' / 'bert-base-chinese'}",
                   f"data.train={corpus}", "data.heldout=40", f"masking.lexicon={lexicon}",
                   "masking.entity_mask_prob=0.1", "trainer.max_steps=40", "trainer.eval_every=20",
                   "trainer.batch_size=16", "trainer.learning_rate=1e-3", "trainer.logging_steps=5",
                   "trainer.progress=false", "trainer.keep_checkpoints=true"], "adapt")
    final = run_adapt(cfg, out)
    return out, final


def test_mlm_loss_falls_and_saves(mlm_dir):
    out, final = mlm_dir
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in recs if "loss" in r]
    assert losses[-1] < losses[0] - 1.0, losses
    assert "eval_masked_accuracy" in final and final["eval_perplexity"] > 1
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["masking"]["entity_operations"]["mentions"] > 0 and summary["masking"]["strategy"]  # the lexicon found entities in the corpus
    assert (out / "loss.png").exists() and (out / "heldout_accuracy.png").exists()
    # each checkpoint came whole out of its staging folder, the masking state inside it
    for step in (20, 40):
        assert {"trainer_state.json", "masking_rng_rank0.json", "model.safetensors"} <= {
            p.name for p in (out / f"checkpoint-{step}").iterdir()}
    assert not list(out.glob(".checkpoint-*"))
    card = (out / "README.md").read_text()
    assert "masked-LM" in card and "entity-wwm" in card and "held-out masked-token accuracy" in card


def test_fill_mask_round_trip(mlm_dir):
    from transformers import AutoModelForMaskedLM

    out, _ = mlm_dir
    assert type(AutoModelForMaskedLM.from_pretrained(out)).__name__ == "BertForMaskedLM"
    text = "患者出现[MASK][MASK]等症状"
    preds = fill_mask(str(out), text, top_k=3)
    assert len(preds) == 2 and all(len(p) == 3 for p in preds)
    # each mask's top 3 = the model's own softmax at that position, best first
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(text.replace("[MASK]", tok.mask_token), return_tensors="pt")
    with torch.no_grad():
        probs = AutoModelForMaskedLM.from_pretrained(out).eval()(**enc).logits[0].softmax(-1)
    at = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
    for pos, got in zip(at, preds):
        top = probs[pos].topk(3)
        assert [t for t, _ in got] == tok.convert_ids_to_tokens(top.indices.tolist())
        assert [p for _, p in got] == pytest.approx(top.values.tolist(), rel=1e-4)
    assert len(fill_mask(str(out), "患者出现[MASK]", top_k=2)) == 1  # one mask: still one list per mask


@pytest.mark.slow
def test_finetune_from_adapted_model(mlm_dir, cluener_subset, tmp_path):
    from conftest import train_run

    out, _ = mlm_dir
    train_run(tmp_path, "tiny-bert", "ner-crf", *cluener_subset, steps=3, extra=[f"model.name_or_path={out}"])
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2 and cfg["lingshu"]["decoder"] == "crf"


@pytest.mark.parametrize("arch", ["bert", "modernbert"])
def test_sparse_mlm_loss_equals_full_forward(arch, bert_tok):
    """The vocabulary projection at masked positions only gives the full forward's loss and argmax."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    from lingshu.modeling.backbone import special_token_ids
    from lingshu.pretrain.mlm import sparse_mlm_forward

    torch.manual_seed(0)
    cfg = AutoConfig.for_model(arch, vocab_size=len(bert_tok), hidden_size=64, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=128, **special_token_ids(bert_tok))
    model = AutoModelForMaskedLM.from_config(cfg).eval()
    ids = torch.randint(1000, 5000, (3, 20))
    labels = torch.full_like(ids, -100)
    labels[:, 3:6] = ids[:, 3:6]
    labels[1, 15] = ids[1, 15]
    mask = torch.ones_like(ids)
    mask[2, 12:] = 0
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, labels=labels)
        sparse = sparse_mlm_forward(model, {"input_ids": ids, "attention_mask": mask, "labels": labels})
    assert torch.allclose(full.loss, sparse["loss"], atol=1e-5)
    sel = labels != -100
    assert torch.equal(sparse["logits"][sel], full.logits.argmax(-1)[sel])
    assert (sparse["logits"][~sel] == -100).all()


def test_mlm_head_on_an_encoder_only_checkpoint(tmp_path, bert_tok):
    """An encoder without an MLM head gets one: decoder tied to the word embeddings, only the
    transform and the bias new (and reported as such)."""
    import torch
    from transformers import BertConfig, BertModel

    from lingshu.pretrain.mlm import load_mlm

    enc = BertModel(BertConfig(vocab_size=len(bert_tok), hidden_size=64, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=128), add_pooling_layer=False)
    enc.save_pretrained(tmp_path)
    model = load_mlm(str(tmp_path))
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert torch.equal(model.get_input_embeddings().weight, enc.get_input_embeddings().weight)
    assert model.lingshu_new_keys and all(k.startswith("cls.predictions.") for k in model.lingshu_new_keys)
    assert not any("decoder.weight" in k for k in model.lingshu_new_keys)


def test_entity_operations_follow_the_strategy_and_the_lexicon(caplog):
    """The default entity operations apply to entity-wwm with a lexicon only: wwm and char run with
    the defaults unchanged (the collator refuses entity operations for them), and entity-wwm
    without a lexicon is plain whole-word masking, said in a warning."""
    from lingshu.config import compose
    from lingshu.pretrain.masking import EntityAwareWWMCollator
    from lingshu.pretrain.mlm import entity_operations

    defaults = compose([], "adapt").masking
    assert defaults.strategy == "entity-wwm"
    assert entity_operations(defaults, ["高血压"]) == {
        "replace_prob": 0.05, "delete_prob": 0.0, "entity_mask_prob": 0.1}
    off = dict.fromkeys(("replace_prob", "delete_prob", "entity_mask_prob"), 0.0)
    with caplog.at_level("WARNING", logger="lingshu"):
        assert entity_operations(defaults, []) == off
    assert "without masking.lexicon" in caplog.text
    caplog.clear()
    for strategy in ("wwm", "char"):
        cfg = compose([f"masking.strategy={strategy}"], "adapt").masking
        with caplog.at_level("WARNING", logger="lingshu"):
            assert entity_operations(cfg, ["高血压"]) == off
        assert not caplog.text
        with pytest.raises(ValueError, match="entity operations need"):  # what the zeros avoid
            EntityAwareWWMCollator(_FakeTok(), strategy=strategy, replace_prob=float(cfg.replace_prob),
                                   entity_mask_prob=float(cfg.entity_mask_prob), lexicon_terms=["高血压"])


class _FakeTok:
    mask_token_id, pad_token_id = 3, 0
