"""WordPiece vocabulary training (lingshu.pretrain.tokenizer) on a slice of the real corpus."""

import argparse
import json

import pytest

from lingshu.pretrain.tokenizer import SPECIAL_TOKENS, add_cli, train_wordpiece

VOCAB_SIZE = 3000


@pytest.fixture(scope="module")
def corpus_slice(shared, tmp_path_factory):
    src = shared / "corpus" / "medical_qa_dialogue.txt"
    with open(src, encoding="utf-8") as f:
        head = [next(f) for _ in range(2000)]
    p = tmp_path_factory.mktemp("corpus") / "slice.txt"
    # A few Latin/digit terms so that word pieces have something to learn from.
    p.write_text("".join(head) + "糖化血红蛋白HbA1c偏高，复查HbA1c和LDL。\n" * 5, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def trained(corpus_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    tok = train_wordpiece([corpus_slice], out, vocab_size=VOCAB_SIZE, min_frequency=2, progress=False)
    return tok, out


def test_loads_with_the_trained_vocabulary(trained, corpus_slice):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tok, out = trained
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    trained_size = raw.get_vocab_size()
    assert 1000 < trained_size <= VOCAB_SIZE
    loaded = AutoTokenizer.from_pretrained(str(out))
    assert len(loaded) == len(tok) == trained_size  # not the 5-token pitfall
    assert [loaded.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (loaded.pad_token_id, loaded.unk_token_id, loaded.cls_token_id, loaded.sep_token_id,
            loaded.mask_token_id) == (0, 1, 2, 3, 4)
    config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert "Bert" in config["tokenizer_class"]
    # vocab.txt matches, and loads with the full size through vocab= (not the 5-token pitfall).
    lines = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == trained_size and lines[:5] == SPECIAL_TOKENS
    assert lines == [loaded.convert_ids_to_tokens(i) for i in range(trained_size)]
    from transformers import BertTokenizerFast

    assert len(BertTokenizerFast(vocab=str(out / "vocab.txt"))) == trained_size
    # Every character of the corpus is in the vocabulary: nothing in it maps to [UNK].
    text = corpus_slice.read_text(encoding="utf-8").splitlines()[7]
    assert loaded.unk_token_id not in loaded(text)["input_ids"]


def test_cjk_characters_are_single_tokens(trained):
    tok, _ = trained
    text = "患者出现发热咳嗽，建议做血常规检查。"
    assert tok.tokenize(text) == list(text)
    assert tok.unk_token not in tok.tokenize(text)
    # Characters stay single tokens even when a pair is frequent (no merges across CJK).
    vocab = tok.get_vocab()
    cjk_multi = [t for t in vocab if len(t.lstrip("#")) > 1 and any("\u4e00" <= c <= "\u9fff" for c in t)]
    assert cjk_multi == []


def test_latin_runs_become_word_pieces(trained):
    tok, _ = trained
    for word in ("HbA1c", "hba1c"):  # lowercased first
        pieces = tok.tokenize(word)
        assert "".join(p.removeprefix("##") for p in pieces) == "hba1c"
        assert all(p.startswith("##") for p in pieces[1:]) and tok.unk_token not in pieces
    # Not a word of the corpus, with letters (j, q, z) that the slice barely or never has inside a
    # word: split into pieces, never [UNK], because every letter/digit has a ## form.
    for odd in ("xqzjyhba1c", "Qjz9"):
        pieces = tok.tokenize(odd)
        assert len(pieces) > 1 and tok.unk_token not in pieces
        assert "".join(p.removeprefix("##") for p in pieces) == odd.lower()
    vocab = tok.get_vocab()
    assert all(c in vocab and "##" + c in vocab for c in "abcdefghijklmnopqrstuvwxyz0123456789")
    assert all(c in vocab for c in ".,;:!?%()[]<>=+-*/")


def test_ids_round_trip(trained):
    tok, _ = trained
    text = "糖化血红蛋白HbA1c升高到7.5%，需要调整胰岛素用量。"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.unk_token_id not in ids
    tokens = tok.convert_ids_to_tokens(ids)
    assert tok.convert_tokens_to_ids(tokens) == ids
    decoded = tok.decode(ids, skip_special_tokens=True)
    assert decoded.replace(" ", "") == text.lower()
    pair = tok("问题一", "回答二")
    assert pair["token_type_ids"] == [0] * 5 + [1] * 4


def test_cli_train_and_missing_file(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("患者出现发热咳嗽，查血常规白细胞升高。\n血压140/90mmHg，心率88次/分。\n" * 20, encoding="utf-8")
    parser = argparse.ArgumentParser(prog="lingshu")
    add_cli(parser.add_subparsers(dest="cmd"))
    out = tmp_path / "vocab"
    args = parser.parse_args(["tokenizer", "train", str(corpus), "-o", str(out), "--vocab-size", "200",
                              "--min-frequency", "2", "--no-progress"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "vocabulary" in printed and "[MASK]=4" in printed
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    assert 30 < len(tok) <= 200 and tok.tokenize("血压") == ["血", "压"]
    assert "mmhg" in tok.get_vocab() or "##hg" in tok.get_vocab()

    args = parser.parse_args(["tokenizer", "train", str(tmp_path / "nope.txt"), "-o", str(out), "--no-progress"])
    assert args.func(args) == 1
    assert "nope.txt" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        train_wordpiece([tmp_path / "nope.txt"], out)
