"""Entity-aware whole-word masking: statistics over a slice of the shared corpus.

Every rate below is measured over thousands of words drawn with a fixed seed, so the tolerances
are several standard errors wide and the tests are deterministic.
"""

import numpy as np
import pytest
import torch

from lingshu.pretrain.lexicon import Segmenter, load_lexicon
from lingshu.pretrain.masking import EntityAwareWWMCollator, encode_for_mlm

MAX_LEN = 128


@pytest.fixture(scope="module")
def tok(shared):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(shared / "vocab" / "bert-base-chinese"))
    assert len(t) == 21128 and t.mask_token_id == 103
    return t


@pytest.fixture(scope="module")
def terms(shared):
    return load_lexicon(shared / "lexicon" / "cmekg_terms.txt")


@pytest.fixture(scope="module")
def segmenter(terms):
    return Segmenter(lexicon_terms=terms)


@pytest.fixture(scope="module")
def texts(shared):
    from conftest import corpus_sample

    return corpus_sample(shared, width=400)


@pytest.fixture(scope="module")
def examples(tok, segmenter, texts):
    ex = encode_for_mlm(tok, segmenter, texts, max_length=MAX_LEN)
    assert len(ex) > 600
    return ex


def batches(examples, bs=32):
    for i in range(0, len(examples), bs):
        yield examples[i:i + bs]


def padded(rows, key, fill):
    L = max(len(r[key]) for r in rows)
    return np.array([[fill if v is None else v for v in r[key]] + [fill] * (L - len(r[key]))
                     for r in rows])


def run_epochs(collator, examples, epochs=3):
    """Yield (batch examples, word ids [B, L] with -1 for none, entity-token mask, output)."""
    for _ in range(epochs):
        for b in batches(examples):
            words = padded(b, "word_ids", -1)
            ent = np.zeros_like(words, dtype=bool)
            for i, r in enumerate(b):
                ent[i] = np.isin(words[i], list(r["entity_words"])) & (words[i] >= 0)
            yield b, words, ent, {k: v.numpy() for k, v in collator(b).items()}


# ---------------------------------------------------------------- encode_for_mlm

def _check_word_ids(tok, segmenter, texts, examples_):
    """Same word id <=> same segment span, by the first-non-space-character rule; words and
    entities are contiguous runs of tokens."""
    enc = tok(texts, max_length=MAX_LEN, truncation=True, return_offsets_mapping=True,
              return_special_tokens_mask=True)
    assert len(examples_) == len(texts)
    for k, (text, ex) in enumerate(zip(texts, examples_)):
        assert ex["input_ids"] == enc["input_ids"][k]
        spans, is_ent = segmenter.segment(text)
        span_of = np.repeat(np.arange(len(spans)), [e - s for s, e in spans])
        pairs = set()
        for (s, e), sp, w in zip(enc["offset_mapping"][k], enc["special_tokens_mask"][k],
                                 ex["word_ids"]):
            if sp:
                assert w is None
                continue
            c = s
            while c < e - 1 and text[c].isspace():
                c += 1
            pairs.add((w, int(span_of[c])))
            assert (w in ex["entity_words"]) == is_ent[span_of[c]]
        # a bijection between word ids and spans
        assert len({w for w, _ in pairs}) == len(pairs) == len({s for _, s in pairs})
        ws = [w for w in ex["word_ids"] if w is not None]
        assert ws == sorted(ws) and set(ws) == set(range(max(ws) + 1))


def test_encode_bert_wordpiece(tok, segmenter, texts, terms):
    short = [t for t in texts if 0 < len(t) < 100][:100]
    ex = encode_for_mlm(tok, segmenter, short, max_length=MAX_LEN, split_long=False)
    _check_word_ids(tok, segmenter, short, ex)
    # entity words spell lexicon terms (bert-base-chinese keeps CJK one character per token;
    # its normaliser lowercases and drops spaces, so compare in that form)
    lex = {t.lower().replace(" ", "") for t in terms}
    n = good = 0
    for e in ex:
        toks = tok.convert_ids_to_tokens(e["input_ids"])
        for w in e["entity_words"]:
            piece = "".join(t.removeprefix("##") for t, x in zip(toks, e["word_ids"]) if x == w)
            if "[UNK]" not in piece:
                n += 1
                good += piece in lex
    assert n > 100 and good / n > 0.98


@pytest.mark.parametrize("which", ["xlmr_tok", "bpe_tok"])
def test_encode_other_tokenizers(request, which, segmenter):
    t = request.getfixturevalue(which)
    texts = ["患者出现发热咳嗽，诊断为社区获得性肺炎。", "MRI shows a lesion 2019年 糖化血红蛋白HbA1c升高",
             "阿莫西林胶囊0.5g口服， 每日三次"]
    ex = encode_for_mlm(t, segmenter, texts, max_length=64, split_long=False)
    _check_word_ids(t, segmenter, texts, ex)
    if which == "xlmr_tok":  # the lone ▁ goes with the piece it precedes
        lone = 0
        for e in ex:
            toks = t.convert_ids_to_tokens(e["input_ids"])
            for i, tk in enumerate(toks[:-1]):
                if tk == "▁" and e["word_ids"][i] is not None:
                    lone += 1
                    assert e["word_ids"][i] == e["word_ids"][i + 1]
        assert lone > 0


def test_encode_splits_long_texts(tok, segmenter):
    text = "患者出现发热咳嗽，诊断为社区获得性肺炎。" * 30  # 600 characters
    ex = encode_for_mlm(tok, segmenter, [text], max_length=64)
    assert len(ex) >= 9 and all(len(e["input_ids"]) <= 64 for e in ex)
    assert sum(len(e["input_ids"]) - 2 for e in ex) == len(text)  # nothing lost
    assert len(encode_for_mlm(tok, segmenter, [text], max_length=64, split_long=False)) == 1


# ---------------------------------------------------------------- selection statistics

@pytest.mark.parametrize("strategy", ["entity-wwm", "wwm", "char"])
def test_selection_ratio_and_80_10_10(tok, examples, strategy):
    col = EntityAwareWWMCollator(tok, strategy=strategy, seed=0)
    n_valid = n_chosen = n_mask = n_same = n_rand = 0
    for _, words, _, out in run_epochs(col, examples):
        chosen = out["labels"] != -100
        n_valid += int((words >= 0).sum())
        n_chosen += int(chosen.sum())
        inp, lab = out["input_ids"][chosen], out["labels"][chosen]
        n_mask += int((inp == tok.mask_token_id).sum())
        n_same += int((inp == lab).sum())
        n_rand += int(((inp != lab) & (inp != tok.mask_token_id)).sum())
    ratio = n_chosen / n_valid
    print(f"{strategy}: {n_chosen}/{n_valid} chosen = {ratio:.4f}")
    assert abs(ratio - 0.15) < 0.01
    assert abs(n_mask / n_chosen - 0.8) < 0.015
    assert abs(n_same / n_chosen - 0.1) < 0.01
    assert abs(n_rand / n_chosen - 0.1) < 0.01


@pytest.mark.parametrize("strategy,kw", [("entity-wwm", {}), ("wwm", {}),
                                         ("entity-wwm", {"entity_mask_prob": 0.3})])
def test_no_word_partly_masked(tok, examples, strategy, kw):
    col = EntityAwareWWMCollator(tok, strategy=strategy, seed=1, **kw)
    n_words = 0
    for _, words, _, out in run_epochs(col, examples, epochs=2):
        chosen = out["labels"] != -100
        for i in range(len(words)):
            w = words[i][words[i] >= 0]
            c = chosen[i][words[i] >= 0]
            # per word: number of chosen tokens is 0 or all of them
            total = np.bincount(w)
            hit = np.bincount(w, weights=c)
            ok = (hit == 0) | (hit == total)
            assert ok.all(), f"row {i}: partly masked words {np.flatnonzero(~ok)}"
            n_words += int((hit > 0).sum())
    assert n_words > 5000


def test_char_strategy_masks_partial_words(tok, examples):
    col = EntityAwareWWMCollator(tok, strategy="char", seed=2)
    partial = 0
    for _, words, _, out in run_epochs(col, examples, epochs=1):
        chosen = out["labels"] != -100
        for i in range(len(words)):
            w = words[i][words[i] >= 0]
            total = np.bincount(w)
            hit = np.bincount(w, weights=chosen[i][words[i] >= 0])
            partial += int(((hit > 0) & (hit < total)).sum())
    assert partial > 100


def _entity_rates(tok, examples, weight):
    col = EntityAwareWWMCollator(tok, entity_weight=weight, seed=3)
    ent_hit = ent_n = oth_hit = oth_n = 0
    for _, words, ent, out in run_epochs(col, examples):
        chosen = out["labels"] != -100
        other = (words >= 0) & ~ent
        ent_hit += int((chosen & ent).sum())
        ent_n += int(ent.sum())
        oth_hit += int((chosen & other).sum())
        oth_n += int(other.sum())
    return ent_hit / ent_n, oth_hit / oth_n


def test_entities_selected_more_with_weight(tok, examples):
    ent3, oth3 = _entity_rates(tok, examples, 3.0)
    ent1, oth1 = _entity_rates(tok, examples, 1.0)
    print(f"weight 3: entity {ent3:.3f} other {oth3:.3f}; weight 1: entity {ent1:.3f} other {oth1:.3f}")
    assert ent3 / oth3 > 1.8
    assert 0.85 < ent1 / oth1 < 1.15


def test_masks_resampled_every_call(tok, examples):
    batch = examples[:32]
    col = EntityAwareWWMCollator(tok, seed=4)
    first, second = col(batch), col(batch)
    assert torch.equal(first["attention_mask"], second["attention_mask"])
    assert not torch.equal(first["labels"], second["labels"])
    again = EntityAwareWWMCollator(tok, seed=4)(batch)  # a seed makes runs reproducible
    assert torch.equal(again["labels"], first["labels"])
    assert torch.equal(again["input_ids"], first["input_ids"])


def test_special_tokens_never_masked(tok, examples):
    special = sorted(set(tok.all_special_ids) - {tok.unk_token_id})  # [UNK] is text
    for strategy in ("entity-wwm", "wwm", "char"):
        col = EntityAwareWWMCollator(tok, strategy=strategy, seed=5, mlm_probability=0.5,
                                     **({"entity_mask_prob": 0.5} if strategy == "entity-wwm" else {}))
        for b, words, _, out in run_epochs(col, examples, epochs=1):
            orig = padded(b, "input_ids", tok.pad_token_id)
            is_special = np.isin(orig, special)
            assert (out["labels"][is_special] == -100).all()
            assert (out["input_ids"][is_special] == orig[is_special]).all()
            assert (out["attention_mask"] == (np.arange(orig.shape[1]) < [[len(r["input_ids"])] for r in b])).all()
            chosen = out["labels"] != -100
            # random replacements are never special tokens; [MASK] only where chosen
            rand = chosen & (out["input_ids"] != tok.mask_token_id) & (out["input_ids"] != out["labels"])
            assert not np.isin(out["input_ids"][rand], tok.all_special_ids).any()
            assert not (out["input_ids"][~chosen] == tok.mask_token_id).any()


# ---------------------------------------------------------------- entity operations

def _check_well_formed(tok, out, cap):
    ids, att, lab = out["input_ids"], out["attention_mask"], out["labels"]
    assert ids.shape == att.shape == lab.shape and ids.shape[1] <= cap
    lengths = att.sum(1)
    assert (att == (np.arange(ids.shape[1]) < lengths[:, None])).all()
    assert (ids[:, 0] == tok.cls_token_id).all()
    assert (ids[np.arange(len(ids)), lengths - 1] == tok.sep_token_id).all()
    assert (ids[att == 0] == tok.pad_token_id).all() and (lab[att == 0] == -100).all()


def test_entity_operation_rates(tok, examples, terms):
    col = EntityAwareWWMCollator(tok, replace_prob=0.2, delete_prob=0.1, entity_mask_prob=0.15,
                                 lexicon_terms=terms, seed=6, max_length=MAX_LEN)
    n_chosen = n_same = 0
    for _, _, _, out in run_epochs(col, examples, epochs=2):
        _check_well_formed(tok, out, MAX_LEN)
        chosen = out["labels"] != -100
        n_chosen += int(chosen.sum())
        n_same += int((out["input_ids"][chosen] == out["labels"][chosen]).sum())
    s = col.stats
    print(dict(s))
    assert s["mentions"] > 5000
    assert abs(s["replaced"] / s["mentions"] - 0.2) < 0.02
    assert abs(s["deleted"] / s["mentions"] - 0.1) < 0.015
    assert abs(s["masked_whole"] / s["mentions"] - 0.15) < 0.015
    assert abs(n_same / n_chosen - 0.1) < 0.015  # labels stay aligned with the inputs


def _reconstruct(out):
    """The text the model is asked about: inputs with every chosen position restored."""
    ids = np.where(out["labels"] != -100, out["labels"], out["input_ids"])
    return [row[:n].tolist() for row, n in zip(ids, out["attention_mask"].sum(1))]


def test_delete_removes_exactly_the_entities(tok, examples):
    col = EntityAwareWWMCollator(tok, delete_prob=1.0, seed=7)
    for b in list(batches(examples))[:8]:
        got = _reconstruct({k: v.numpy() for k, v in col(b).items()})
        for r, g in zip(b, got):
            keep = [i for i, w in zip(r["input_ids"], r["word_ids"]) if w not in set(r["entity_words"])]
            assert g == keep


def test_replace_inserts_terms_and_keeps_max_length(tok, examples):
    term = "糖尿病肾病综合征"  # 8 tokens: rows grow and must be cut back to the cap
    term_ids = tok(term, add_special_tokens=False)["input_ids"]
    cap = 100
    col = EntityAwareWWMCollator(tok, replace_prob=1.0, lexicon_terms=[term], seed=8, max_length=cap)
    grown = 0
    for b in list(batches(examples))[:8]:
        out = {k: v.numpy() for k, v in col(b).items()}
        _check_well_formed(tok, out, cap)
        for r, g in zip(b, _reconstruct(out)):
            ents = set(r["entity_words"])
            expect, last = [], None
            for i, w in zip(r["input_ids"], r["word_ids"]):
                if w in ents:
                    if w != last:
                        expect += term_ids
                else:
                    expect.append(i)
                last = w
            if len(expect) > cap:
                expect = expect[:cap - 1] + [tok.sep_token_id]
                grown += 1
            assert g == expect
    assert grown > 0


def test_whole_entity_masking_chooses_every_entity_token(tok, examples):
    col = EntityAwareWWMCollator(tok, entity_mask_prob=1.0, seed=9)
    for b, words, ent, out in run_epochs(col, examples, epochs=1):
        assert (out["labels"][ent] != -100).all()


def test_argument_checks(tok):
    with pytest.raises(ValueError, match="strategy"):
        EntityAwareWWMCollator(tok, strategy="span")
    with pytest.raises(ValueError, match="entity-wwm"):
        EntityAwareWWMCollator(tok, strategy="wwm", delete_prob=0.1)
    with pytest.raises(ValueError, match="lexicon_terms"):
        EntityAwareWWMCollator(tok, replace_prob=0.1)
    with pytest.raises(ValueError, match="<= 1"):
        EntityAwareWWMCollator(tok, replace_prob=0.6, delete_prob=0.6, lexicon_terms=["发热"])
    with pytest.raises(KeyError, match="word_ids"):
        EntityAwareWWMCollator(tok, strategy="wwm")([{"input_ids": [101, 2642, 102]}])


# ---------------------------------------------------------------- workers and speed

class _Repeat(torch.utils.data.Dataset):
    def __init__(self, items, n):
        self.items, self.n = items, n

    def __len__(self):
        return self.n * len(self.items)

    def __getitem__(self, i):
        return self.items[i % len(self.items)]


def test_dataloader_workers_draw_different_masks(tok, examples):
    items = examples[:4]
    col = EntityAwareWWMCollator(tok, seed=10)
    loader = torch.utils.data.DataLoader(_Repeat(items, 2), batch_size=4, num_workers=2,
                                         collate_fn=col, multiprocessing_context="fork")
    epoch1 = [b["labels"] for b in loader]  # batch 0 from worker 0, batch 1 from worker 1
    epoch2 = [b["labels"] for b in loader]
    assert not torch.equal(epoch1[0], epoch1[1])
    assert not torch.equal(epoch1[0], epoch2[0])


# the collator's speed: benchmarks/bench_data_speed.py (no timing in tests)


def test_whole_entity_masking_after_replacement_truncates_the_row(tok, examples, terms):
    """Replacing mentions by longer terms pushes a row past max_length; a mention chosen for
    whole masking that the truncation cut off must be dropped, not indexed (this crashed in the
    second epoch of a 3000-step pretraining run)."""
    from lingshu.pretrain.mlm import pack_examples

    full = pack_examples(examples, MAX_LEN)  # rows at max_length, so any growth truncates
    c = EntityAwareWWMCollator(tok, lexicon_terms=terms, replace_prob=0.5, entity_mask_prob=0.5, seed=3,
                               max_length=MAX_LEN)
    seen = 0
    for b in batches(full):
        out = c(b)
        assert out["input_ids"].shape[1] <= MAX_LEN
        seen += 1
    assert seen and c.stats["replaced"] > 100 and c.stats["masked_whole"] > 100


def test_masking_state_survives_a_checkpoint(tok, examples, tmp_path):
    """What a checkpoint saves lets a resumed run draw the masks the uninterrupted run draws next;
    without it the resumed run repeats the masks of the first steps."""
    from lingshu.pretrain.mlm import restore_masking_state, save_masking_state

    batch = examples[:16]
    run = EntityAwareWWMCollator(tok, seed=7)
    first = [run(batch)["labels"] for _ in range(2)]
    (tmp_path / "checkpoint-2").mkdir()
    save_masking_state(run, tmp_path / "checkpoint-2")
    after = [run(batch)["labels"] for _ in range(2)]
    resumed = EntityAwareWWMCollator(tok, seed=7)
    assert restore_masking_state(resumed, tmp_path / "checkpoint-2")
    assert all(torch.equal(resumed(batch)["labels"], want) for want in after)
    fresh = EntityAwareWWMCollator(tok, seed=7)  # what a resume did before: the first steps' masks again
    assert torch.equal(fresh(batch)["labels"], first[0])
    assert not restore_masking_state(EntityAwareWWMCollator(tok, seed=8), tmp_path / "checkpoint-2")  # other seed
    assert not restore_masking_state(fresh, tmp_path)  # no state there
