"""Tests for the built-in demo corpus (lingshu.demo)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lingshu.demo import (
    DOMAINS,
    ENTITY_TYPES,
    PREDICT_SENTENCES,
    demo_documents,
    held_out_terms,
    term_lists,
    write_demo,
)
from lingshu.schema import Document


@pytest.fixture(scope="module")
def docs() -> list[Document]:
    return demo_documents(400, seed=0)


def _nested_pairs(doc: Document) -> list[tuple]:
    """(outer, inner) pairs where inner lies inside outer and is a different span."""
    return [
        (a, b)
        for a in doc.entities
        for b in doc.entities
        if a.start <= b.start and b.end <= a.end and (a.start, a.end) != (b.start, b.end)
    ]


def test_offsets_are_exact(docs):
    for d in docs:
        assert d.entities, d.text
        for e in d.entities:
            assert 0 <= e.start < e.end <= len(d.text)
            assert d.text[e.start:e.end] == e.text, (d.id, e)
            assert e.type in ENTITY_TYPES
        keys = [e.key for e in d.entities]
        assert len(keys) == len(set(keys)), d.text


def test_spans_are_disjoint_or_nested(docs):
    for d in docs:
        for a in d.entities:
            for b in d.entities:
                if a is b:
                    continue
                overlap = a.start < b.end and b.start < a.end
                nested = (a.start <= b.start and b.end <= a.end) or (b.start <= a.start and a.end <= b.end)
                assert not overlap or nested, (d.text, a, b)


def test_deterministic():
    a = demo_documents(120, seed=3)
    b = demo_documents(120, seed=3)
    assert [(d.id, d.text, d.entities) for d in a] == [(d.id, d.text, d.entities) for d in b]
    c = demo_documents(120, seed=4)
    assert [d.text for d in a] != [d.text for d in c]


def test_ids_and_count(docs):
    assert len(docs) == 400
    assert docs[0].id == "demo-0001"
    assert docs[-1].id == "demo-0400"
    assert len({d.id for d in docs}) == 400


def test_texts_distinct(docs):
    texts = {d.text for d in docs}
    assert len(texts) == len(docs) >= 200


def test_every_type_at_least_20_times(docs):
    counts = Counter(e.type for d in docs for e in d.entities)
    for t in ENTITY_TYPES:
        assert counts[t] >= 20, (t, counts)


def test_scan_regions_are_bpro_parts():
    for name, domain in DOMAINS.items():
        assert set(domain["scan"]) == set(domain["bdis"][0]), name
        for parts in domain["scan"].values():
            assert set(parts) <= set(domain["bpro"][0]), name


def test_lengths_and_characters_vary(docs):
    lengths = [len(d.text) for d in docs]
    assert min(lengths) <= 15
    assert max(lengths) >= 80
    assert any(any(c.isdigit() for c in d.text) for d in docs)
    assert any(any(c.isascii() and c.isalpha() for c in e.text) for d in docs for e in d.entities)
    assert any("，" in d.text for d in docs)


def test_nested_mentions_present(docs):
    pairs = [(a.type, b.type) for d in docs for a, b in _nested_pairs(d)]
    kinds = Counter(pairs)
    assert len(pairs) >= 50
    for kind in [("sym", "bod"), ("dis", "bod"), ("pro", "bod"), ("ite", "mic")]:
        assert kinds[kind] >= 5, kinds


def test_split_argument():
    held = held_out_terms()
    train = demo_documents(200, seed=1, split="train")
    for d in train:
        for e in d.entities:
            assert e.text not in held[e.type], (d.text, e)
    dev = demo_documents(100, seed=1, split="dev")
    assert sum(any(e.text in held[e.type] for e in d.entities) for d in dev) >= 50
    with pytest.raises(ValueError):
        demo_documents(10, split="test")


def test_held_out_terms_cover_every_type():
    held = held_out_terms()
    terms = term_lists()
    for t in ENTITY_TYPES:
        assert held[t], t
        assert held[t] <= set(terms[t])
        assert len(held[t]) < len(terms[t]) / 2


def _check_cmeee_file(path) -> list[dict]:
    records = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(records, list) and records
    for r in records:
        assert set(r) == {"id", "text", "entities"}
        for e in r["entities"]:
            assert set(e) == {"start_idx", "end_idx", "type", "entity"}
            assert e["type"] in ENTITY_TYPES
            # CMeEE end_idx is inclusive
            assert r["text"][e["start_idx"]:e["end_idx"] + 1] == e["entity"]
    return records


def test_write_demo(tmp_path):
    out = tmp_path / "demo"
    paths = write_demo(out, n=400, dev_fraction=0.2, seed=0)
    assert set(paths) == {"train", "dev", "predict"}
    assert paths["train"].name == "demo_train.json"
    assert paths["dev"].name == "demo_dev.json"
    assert paths["predict"].name == "demo_predict.txt"
    raw = paths["train"].read_text(encoding="utf-8")
    assert "\\u" not in raw  # ensure_ascii=False: the Chinese is written as is
    # what was generated is what lingshu reads back (nested mentions included)
    from lingshu.data import read_documents

    gen = demo_documents(320, seed=0, split="train")  # the same draws, other ids
    back = read_documents(paths["train"]).documents
    assert [(d.text, sorted(e.key for e in d.entities)) for d in back] == \
        [(d.text, sorted(e.key for e in d.entities)) for d in gen]
    assert any(a.start <= b.start and b.end <= a.end and a != b for d in back for a in d.entities for b in d.entities)

    train = _check_cmeee_file(paths["train"])
    dev = _check_cmeee_file(paths["dev"])
    assert len(train) == 320 and len(dev) == 80
    assert not {r["text"] for r in train} & {r["text"] for r in dev}

    lines = paths["predict"].read_text(encoding="utf-8").splitlines()
    assert lines == PREDICT_SENTENCES and 8 <= len(lines) <= 15
    assert all(line.strip() for line in lines)

    # same arguments, same files
    again = write_demo(tmp_path / "again", n=400, dev_fraction=0.2, seed=0)
    assert again["train"].read_bytes() == paths["train"].read_bytes()
    assert again["dev"].read_bytes() == paths["dev"].read_bytes()


def test_dev_uses_held_out_terms(tmp_path):
    paths = write_demo(tmp_path, n=400, dev_fraction=0.2, seed=0)
    train = json.loads(paths["train"].read_text(encoding="utf-8"))
    dev = json.loads(paths["dev"].read_text(encoding="utf-8"))
    held = held_out_terms()
    train_terms = {(e["type"], e["entity"]) for r in train for e in r["entities"]}
    dev_terms = {(e["type"], e["entity"]) for r in dev for e in r["entities"]}
    assert not any(x in held[t] for t, x in train_terms)
    unseen = dev_terms - train_terms
    assert len(unseen) >= 20
    assert {t for t, x in unseen if x in held[t]} >= {"dis", "dru", "sym"}
    # most dev sentences contain at least one held-out term, but dev still shares templates
    with_held = sum(any(e["entity"] in held[e["type"]] for e in r["entities"]) for r in dev)
    assert with_held >= len(dev) // 2


def test_write_demo_rejects_bad_fraction(tmp_path):
    with pytest.raises(ValueError):
        write_demo(tmp_path, dev_fraction=1.0)
