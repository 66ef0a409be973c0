"""Decoding on numpy (lingshu.decoding) against the torch implementations it replaced."""

import numpy as np
import pytest
import torch

from lingshu.decoding import (all_pairs, bios_constraints, log_softmax, sigmoid, spans_above, tag_paths, top_spans,
                              viterbi)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_equals_pytorch_crf_decode_on_masked_batches(seed):
    from torchcrf import CRF

    g = torch.Generator().manual_seed(seed)
    n_tags, batch, length = 9, 6, 17
    crf = CRF(n_tags, batch_first=True)
    with torch.no_grad():
        for p in (crf.start_transitions, crf.end_transitions, crf.transitions):
            p.copy_(torch.randn(p.shape, generator=g) * 2)
    em = torch.randn(batch, length, n_tags, generator=g) * 3
    lengths = torch.tensor([17, 1, 5, 16, 9, 2])
    mask = torch.arange(length)[None] < lengths[:, None]
    want = crf.decode(em, mask)
    params = {"start": crf.start_transitions.detach().numpy(), "end": crf.end_transitions.detach().numpy(),
              "transitions": crf.transitions.detach().numpy()}
    got = tag_paths(em.numpy(), lengths.numpy(), params)
    assert got == want
    assert [len(p) for p in got] == lengths.tolist()


def test_viterbi_follows_transitions_over_emissions():
    # emissions prefer tag 1 everywhere, but 1 -> 1 is forbidden: the path must alternate
    em = np.array([[0.0, 1.0]] * 4)
    trans = np.array([[0.0, 0.0], [0.0, -100.0]])
    assert viterbi(em, np.zeros(2), np.zeros(2), trans) == [1, 0, 1, 0]
    assert tag_paths(em[None], np.array([4]), None) == [[1, 1, 1, 1]]  # softmax: per unit
    assert viterbi(em[:0], np.zeros(2), np.zeros(2), trans) == []


def test_constrained_softmax_decoding_gives_the_best_well_formed_bios_path():
    from lingshu.schema import bios_tags
    from lingshu.text.tags import bios_to_spans

    tags = bios_tags(["dis", "sym"])  # O, B-dis, I-dis, S-dis, B-sym, I-sym, S-sym
    k = {t: i for i, t in enumerate(tags)}

    def probs(rows):  # per unit: {tag: probability}, the rest spread evenly
        out = np.full((len(rows), len(tags)), 1e-3)
        for u, row in enumerate(rows):
            for t, p in row.items():
                out[u, k[t]] = p
        return np.log(out / out.sum(1, keepdims=True))

    # argmax reads O I-dis I-dis O: a stray I-dis, repaired into a span starting mid-way; the best
    # well-formed path turns the first I-dis into the B-dis just behind it
    lp = probs([{"O": 0.9}, {"I-dis": 0.5, "B-dis": 0.45}, {"I-dis": 0.9}, {"O": 0.9}])
    c = bios_constraints(tags)
    assert [tags[i] for i in tag_paths(lp[None], np.array([4]))[0]] == ["O", "I-dis", "I-dis", "O"]
    best = [tags[i] for i in viterbi(lp, c["start"], c["end"], c["transitions"])]
    assert best == ["O", "B-dis", "I-dis", "O"] and bios_to_spans(best) == [(1, 2, "dis")]
    # B-x never ends a path nor precedes anything but I-x; I-y never follows B-x / I-x of another type
    lp = probs([{"B-sym": 0.6, "S-sym": 0.4}, {"I-dis": 0.6, "I-sym": 0.4}, {"B-dis": 0.6, "S-dis": 0.3}])
    best = [tags[i] for i in viterbi(lp, c["start"], c["end"], c["transitions"])]
    assert best == ["B-sym", "I-sym", "S-dis"]
    rng = np.random.default_rng(0)  # whatever the scores, the path reads without repair
    for _ in range(50):
        path = [tags[i] for i in viterbi(log_softmax(rng.normal(size=(9, len(tags))) * 3), c["start"], c["end"],
                                         c["transitions"])]
        assert path[0][0] != "I" and path[-1][0] != "B"
        for a, b in zip(path, path[1:]):
            if b[0] == "I":
                assert a[0] in "BI" and a[1:] == b[1:], path
            if a[0] == "B":
                assert b == "I" + a[1:], path


def test_spans_above_and_top_spans():
    logits = np.full((2, 3, 4, 4), -5.0, dtype=np.float32)
    logits[0, 2, 1, 3] = 0.5
    logits[0, 0, 0, 0] = 2.0
    logits[1, 1, 2, 2] = 0.0  # not above 0
    assert spans_above(logits) == [[(0, 0, 0, 2.0), (1, 3, 2, 0.5)], []]
    scores = np.array([[3.0, 1.0, -1.0], [0.0, 2.0, 5.0], [0.0, 0.0, 4.0]])
    assert top_spans(scores, 0.0, 2) == [(1, 2, 5.0), (2, 2, 4.0)]  # the best two, by position
    assert top_spans(scores, 0.0, 10) == [(0, 0, 3.0), (0, 1, 1.0), (1, 1, 2.0), (1, 2, 5.0), (2, 2, 4.0)]
    assert top_spans(scores, 9.0, 10) == []
    assert all_pairs(3) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert sigmoid(np.array([-1e4, 0.0, 1e4])).tolist() == [0.0, 0.5, 1.0]


def test_model_spec_defaults_round_trip_and_keep_unknown_keys():
    from lingshu.modeling.spec import ModelSpec

    old = {"task": "ner", "decoder": "crf", "labels": ["a"], "max_seq_length": 64, "stride": 8}  # no newer keys
    s = ModelSpec.from_dict(old)
    assert (s.drop_lone_prefix, s.train_precision, s.dropout) == (False, None, 0.1)  # as such a model was trained
    assert ModelSpec.from_dict(s.to_dict()) == s
    plug = ModelSpec.from_dict({**old, "task": "mine", "my_option": [1, 2]})
    assert plug.extra == {"my_option": [1, 2]} and plug.to_dict()["my_option"] == [1, 2]
    assert plug.replace(stride=4, other=1).to_dict() == {**plug.to_dict(), "stride": 4, "other": 1}


def test_document_wire_format_round_trips_every_task():
    import json

    from lingshu.schema import Document, Entity, Relation

    s, o = Entity(0, 3, "疾病", "糖尿病", 0.91), Entity(6, 8, "症状", "多饮")
    docs = [Document("糖尿病患者多饮", [s, o], id="a1"),
            Document("糖尿病患者多饮", [s, o], relations=[Relation(s, "临床表现", o, combined=False, score=0.8)]),
            Document("头疼怎么办", text_pair="头痛", label="2", label_scores={"0": 0.1, "1": 0.2, "2": 0.7})]
    for d in docs:
        wire = json.loads(json.dumps(d.to_dict(), ensure_ascii=False))
        back = Document.from_dict(wire)
        assert back.to_dict() == d.to_dict()
        assert [e.key for e in back.entities] == [e.key for e in d.ents] and back.relations == d.relations
    with pytest.raises(ValueError, match='"text"'):
        Document.from_dict({"entities": []})
    with pytest.raises(ValueError, match="entities"):
        Document.from_dict({"text": "x", "entities": [{"start": 0}]})
