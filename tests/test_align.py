"""Character <-> token alignment, windows, and the encode/decode round trip on real data."""

import pytest

from lingshu.data import read_documents
from lingshu.schema import Document, Entity, LabelSet, bios_tags
from lingshu.text.align import Window, encode_texts, merge_window_spans
from lingshu.text.features import Featurizer
from lingshu.text.tags import bios_to_spans

TRICKY = "患者 John Smith（男，45岁）服用ＡＢＣ片２mg😀后出现\u200b皮疹，HbA1c 7.5%。"


def _ent(text, sub, typ, nth=0):
    i = -1
    for _ in range(nth + 1):
        i = text.index(sub, i + 1)
    return Entity(i, i + len(sub), typ, sub)


def tricky_doc():
    t = TRICKY
    ents = [_ent(t, "John Smith", "name"), _ent(t, "ＡＢＣ片", "dru"), _ent(t, "２mg", "dose"),
            _ent(t, "😀", "emoji"), _ent(t, "皮疹", "sym"), _ent(t, "HbA1c", "ite"), _ent(t, "7.5%", "val")]
    return Document(t, ents)


def roundtrip(docs, tok, decoder, max_len=128, stride=32):
    """Encode gold entities as training labels, decode them back as a model's output would be."""
    labels = LabelSet.from_documents(docs).labels
    fz = Featurizer(tok, labels, decoder == "globalpointer", max_len, stride)
    feats, encs, wins, stats = fz.features(docs)
    if decoder == "globalpointer":
        ws = [[(s, e, labels[t], None) for s, e, t in f["spans"]] for f in feats]
    else:
        tags = bios_tags(labels)
        ws = [[(s, e, t, None) for s, e, t in bios_to_spans([tags[i] for i in f["labels"]])] for f in feats]
    out = fz.to_documents(docs, encs, wins, ws, nested=decoder == "globalpointer")
    lost = sum(len({e.key for e in d.entities} - {e.key for e in o.entities}) for d, o in zip(docs, out))
    extra = sum(len({e.key for e in o.entities} - {e.key for e in d.entities}) for d, o in zip(docs, out))
    return stats, lost, extra, out


@pytest.mark.parametrize("tokname", ["bert_tok", "xlmr_tok", "bpe_tok"])
def test_tricky_text_offsets_exact(tokname, request):
    tok = request.getfixturevalue(tokname)
    doc = tricky_doc()
    stats, lost, extra, out = roundtrip([doc], tok, "globalpointer")
    assert not stats.unrepresentable
    assert lost == 0 and extra == 0  # every gold (start, end, type) comes back, nothing else


def test_units_skip_spaces_and_keep_unk(bert_tok):
    enc = encode_texts(bert_tok, [TRICKY])[0]
    chars = set(enc.unit_char)
    assert TRICKY.index(" ") not in chars and TRICKY.index("\u200b") not in chars
    emoji = TRICKY.index("😀")
    assert emoji in chars  # [UNK] keeps its own unit, so it maps back to its character
    assert enc.input_ids[enc.unit_last[enc.unit_char.index(emoji)]] == bert_tok.unk_token_id


def test_xlmr_lone_underscore_is_never_a_head(xlmr_tok):
    enc = encode_texts(xlmr_tok, ["患者"])[0]
    toks = xlmr_tok.convert_ids_to_tokens(enc.input_ids)
    assert "▁" in toks  # this tokenizer does emit the lone piece …
    assert all(toks[i] != "▁" for i in enc.unit_last)  # … but heads are the character pieces


def test_entity_starting_on_space_is_reported(bert_tok):
    doc = Document("a  b", [Entity(1, 3, "x", "  b"[0:2])])
    stats, *_ = roundtrip([doc], bert_tok, "globalpointer")
    assert len(stats.unrepresentable) == 1


@pytest.mark.parametrize("name", ["cluener/train.json", "cluener/dev.json", "cmeee/CMeEE_train.json", "cmeee/CMeEE_dev.json"])
def test_roundtrip_full_shared_sets(name, shared, bert_tok):
    """Span decoder: every gold entity survives encode -> decode (0 unrepresentable, 0 lost).
    BIOS: the only loss is nested entities, exactly as counted by the featurizer."""
    docs = read_documents(shared / name).documents
    max_len = 64 if "cluener" in name else 128
    stats, lost, extra, _ = roundtrip(docs, bert_tok, "globalpointer", max_len)
    assert stats.unrepresentable == [] and lost == 0 and extra == 0
    stats, lost, extra, _ = roundtrip(docs, bert_tok, "crf", max_len)
    assert stats.unrepresentable == [] and extra == 0
    assert lost == stats.nested_dropped
    if "cmeee" in name:
        assert stats.nested_dropped > 1000  # CMeEE is nested: BIOS must lose some …
    else:
        assert stats.nested_dropped <= 2  # … CLUENER has 2 nested pairs in train


@pytest.mark.parametrize("max_len,stride", [(24, 6), (16, 4)])
def test_window_edges_lose_nothing(shared, bert_tok, max_len, stride):
    """Tiny windows on real CMeEE texts: every entity, however it straddles a cut, comes back."""
    docs = read_documents(shared / "cmeee" / "CMeEE_dev.json").documents[:400]
    stats, lost, extra, _ = roundtrip(docs, bert_tok, "globalpointer", max_len, stride)
    assert stats.windows > 3 * len(docs) and stats.clipped > 100
    assert lost == 0 and extra == 0


def test_straddling_entity_found_by_merge():
    # text of 30 units; windows [0,20) and [14,30); an entity at 17..22 straddles the first cut
    w1, w2 = Window(0, 0, 20, True, False), Window(0, 14, 30, False, True)
    # window 1 sees it cut at its edge (17..19), window 2 sees it whole (17..22)
    merged = merge_window_spans([(w1, [(17, 19, "dis", 0.5), (2, 4, "sym", 0.9)]),
                                 (w2, [(17, 22, "dis", 0.8)])], 30, nested=False)
    assert [m[:3] for m in merged] == [(2, 4, "sym"), (17, 22, "dis")]
    # an entity longer than the overlap (10..25) is stitched from its two cut halves
    merged = merge_window_spans([(w1, [(10, 19, "dis", 0.5)]), (w2, [(14, 25, "dis", 0.7)])], 30, nested=True)
    assert [m[:3] for m in merged] == [(10, 25, "dis")]
    # a cut half with no partner is dropped, not emitted truncated
    merged = merge_window_spans([(w1, [(10, 19, "dis", 0.5)]), (w2, [])], 30, nested=True)
    assert merged == []


@pytest.mark.parametrize("tokname", ["bert_tok", "xlmr_tok", "bpe_tok"])
def test_dropping_lone_prefix_keeps_units_and_round_trip(tokname, request, shared):
    """Leaving SentencePiece's lone `▁` out keeps every unit, its head piece and every entity."""
    tok = request.getfixturevalue(tokname)
    docs = read_documents(shared / "cluener" / "dev.json").documents[:300] + [tricky_doc()]
    texts = [d.text for d in docs]
    keep, drop = encode_texts(tok, texts), encode_texts(tok, texts, drop_lone_prefix=True)
    for a, b in zip(keep, drop):
        assert a.unit_char == b.unit_char
        assert [a.input_ids[t] for t in a.unit_last] == [b.input_ids[t] for t in b.unit_last]
    n_keep, n_drop = sum(len(e.input_ids) for e in keep), sum(len(e.input_ids) for e in drop)
    if tokname == "xlmr_tok":
        prefix = tok.convert_tokens_to_ids("\u2581")
        assert sum(i == prefix for e in keep for i in e.input_ids) > 0.4 * n_keep
        assert n_drop < 0.6 * n_keep  # ~1.84 -> ~1.0 tokens per character on CLUENER
    else:
        assert n_drop == n_keep  # WordPiece and BPE have no lone prefix piece
    labels = LabelSet.from_documents(docs).labels
    fz = Featurizer(tok, labels, True, 48, 16, drop_lone_prefix=True)
    feats, encs, wins, stats = fz.features(docs)
    ws = [[(s, e, labels[t], None) for s, e, t in f["spans"]] for f in feats]
    out = fz.to_documents(docs, encs, wins, ws, nested=True)
    assert all({e.key for e in d.entities} == {e.key for e in o.entities} for d, o in zip(docs, out))


@pytest.mark.parametrize("decoder", ["crf", "globalpointer"])
def test_entities_outside_the_labels_are_counted_not_silently_dropped(bert_tok, decoder):
    """task.labels narrower than the data: the other types' entities are trained as not-an-entity,
    and the stats say how many of each type."""
    docs = [Document("张三在北京工作。", [Entity(0, 2, "name", "张三"), Entity(3, 5, "address", "北京")]),
            Document("李四去了上海。", [Entity(0, 2, "name", "李四"), Entity(4, 6, "address", "上海")]),
            Document("王五是医生。", [Entity(0, 2, "name", "王五")])]
    fz = Featurizer(bert_tok, ["address"], decoder == "globalpointer", 32, 8)
    feats, _, _, stats = fz.features(docs)
    assert stats.outside_labels == {"name": 3}
    assert "3 of types outside the model's labels" in stats.summary() and "name 3" in stats.summary()
    if decoder == "globalpointer":
        assert [len(f["spans"]) for f in feats] == [1, 1, 0]
    else:
        assert sum(t != fz.tag_index["O"] for f in feats for t in f["labels"]) == 4  # B/I of 北京, 上海 only
    assert Featurizer(bert_tok, ["address", "name"], decoder == "globalpointer", 32, 8).features(docs)[3].outside_labels == {}
