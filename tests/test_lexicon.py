"""Lexicon loading, restricted unpickling, jieba segmentation with the CMeKG lexicon."""

import os
import pickle
import random
import re
import time

import pytest

from lingshu.pretrain.lexicon import Segmenter, load_lexicon, safe_load_pickle

# characters jieba looks words up in; a term with anything else is split by jieba before lookup
JIEBA_WORD = re.compile(r"^[\u4E00-\u9FD5a-zA-Z0-9+#&._%\-]+$")


@pytest.fixture(scope="module")
def terms(shared):
    return load_lexicon(shared / "lexicon" / "cmekg_terms.txt")


@pytest.fixture(scope="module")
def segmenter(terms):
    t0 = time.perf_counter()
    seg = Segmenter(lexicon_terms=terms)
    print(f"Segmenter with {len(terms)} terms built in {time.perf_counter() - t0:.2f} s")
    return seg


@pytest.fixture(scope="module")
def corpus_lines(shared):
    from conftest import corpus_sample

    return corpus_sample(shared, width=300)


# ---------------------------------------------------------------- load_lexicon

def test_load_full_lexicon(terms):
    assert len(terms) == 115_961
    assert len(set(terms)) == len(terms)
    assert all(t and t == t.strip() for t in terms)
    assert terms[0] == "(慢性)查加斯病累及器官"  # file order kept


def test_load_lexicon_strips_and_dedups(tmp_path):
    p = tmp_path / "kw.txt"
    p.write_text("\ufeff发热\n\n  咳嗽 \n发热\n\t\n高血压\r\n咳嗽\n", encoding="utf-8")
    assert load_lexicon(p) == ["发热", "咳嗽", "高血压"]


# ---------------------------------------------------------------- safe_load_pickle

def _write_marker(path):  # what a malicious pickle would run
    with open(path, "w") as fh:
        fh.write("called")


class _CallsFunction:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_write_marker, (self.marker,))


class _CallsSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_pickle_loads_plain_data(tmp_path, protocol):
    data = {"terms": ["发热", "咳嗽"], "freq": {"发热": 3, "咳嗽": 1.5}, "pair": ("a", None),
            "flags": [True, False], "set": {"高血压", "糖尿病"}, "frozen": frozenset({1, 2}),
            "big": 2 ** 80}
    if protocol >= 3:  # older protocols spell bytes as a call to _codecs.encode, refused
        data["bytes"] = b"\x00\x01"
    p = tmp_path / "lex.pkl"
    p.write_bytes(pickle.dumps(data, protocol=protocol))
    assert safe_load_pickle(p) == data


@pytest.mark.parametrize("payload", [_CallsFunction, _CallsSystem])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_safe_pickle_refuses_callables(tmp_path, payload, protocol):
    marker = tmp_path / "was_called"
    p = tmp_path / "evil.pkl"
    # hidden inside ordinary data, as a tampered lexicon would hide it
    p.write_bytes(pickle.dumps({"terms": ["发热"], "x": payload(marker)}, protocol=protocol))
    with pytest.raises(pickle.UnpicklingError) as err:
        safe_load_pickle(p)
    name = "_write_marker" if payload is _CallsFunction else "system"
    assert name in str(err.value)
    assert not marker.exists()  # refused before the callable was ever called


def test_safe_pickle_refuses_other_builtins(tmp_path):
    p = tmp_path / "eval.pkl"
    # protocol 0 by hand: builtins.eval("1+1"); only set/frozenset may come from builtins
    p.write_bytes(b"cbuiltins\neval\n(V1+1\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        safe_load_pickle(p)


# ---------------------------------------------------------------- Segmenter

def test_segmenter_init_is_quiet_and_timed(terms, capfd):
    seg = Segmenter(lexicon_terms=terms[:100])
    captured = capfd.readouterr()
    assert "prefix dict" not in captured.err and "prefix dict" not in captured.out
    assert seg.init_seconds > 0 and seg.n_terms == 100


def test_words_tile_the_text(segmenter, corpus_lines):
    texts = corpus_lines + ["", " ", "患者 2019年 MRI  示\t左肺病灶\n", "α-干扰素（IFN-α）治疗"]
    for text in texts:
        spans = segmenter.words(text)
        assert "".join(text[s:e] for s, e in spans) == text
        assert all(e > s for s, e in spans)
        assert [s for s, _ in spans[1:]] == [e for _, e in spans[:-1]]


def test_lexicon_terms_kept_whole(segmenter, terms):
    rng = random.Random(0)
    sample = rng.sample([t for t in terms if JIEBA_WORD.match(t)], 2000)
    for term in sample:
        assert segmenter.words(term) == [(0, len(term))], term
        text = f"患者，{term}。"
        assert (3, 3 + len(term)) in segmenter.words(text), term


def test_lexicon_changes_segmentation(segmenter):
    plain = Segmenter()
    text = "诊断为社区获得性肺炎"
    assert (3, 10) not in plain.words(text)  # not one word in jieba's own dictionary
    assert (3, 10) in segmenter.words(text)


def test_global_jieba_untouched(terms):
    import jieba

    from lingshu.pretrain.lexicon import _quiet_jieba

    with _quiet_jieba():
        jieba.dt.initialize()
    total = jieba.dt.total
    seg = Segmenter(lexicon_terms=["灵枢测试术语甲"])
    assert seg.words("灵枢测试术语甲") == [(0, 7)]
    assert "灵枢测试术语甲" not in jieba.dt.FREQ and jieba.dt.total == total
    assert jieba.lcut("灵枢测试术语甲") != ["灵枢测试术语甲"]


def test_entities_longest_match_non_overlapping(segmenter, terms, corpus_lines):
    lex = set(terms)
    assert segmenter.entities("原发性高血压病") == [(0, 6)]  # 原发性高血压 beats 高血压(病)
    assert segmenter.entities("高血压病史") == [(0, 4)]      # 高血压病 beats 高血压
    assert segmenter.entities("用香附（制）煎服") == [(1, 6)]  # punctuation inside a term
    n = 0
    for text in corpus_lines:
        spans = segmenter.entities(text)
        for (s, e), nxt in zip(spans, spans[1:] + [(len(text), len(text))]):
            assert text[s:e] in lex and e - s >= 2
            assert e <= nxt[0]
        n += len(spans)
    assert n > 500  # the corpus is medical: terms are everywhere


def test_segment_makes_entities_whole_words(segmenter, corpus_lines):
    for text in corpus_lines:
        spans, is_ent = segmenter.segment(text)
        assert "".join(text[s:e] for s, e in spans) == text
        assert [s for s, _ in spans[1:]] == [e for _, e in spans[:-1]]
        assert [sp for sp, ent in zip(spans, is_ent) if ent] == segmenter.entities(text)
