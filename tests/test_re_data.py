"""Data layer for relation extraction (CMeIE) and sentence pairs (KUAKE-QQR): readers on the
shared files, the mention location policy, round trips in both CMeIE layouts, label checks,
the SPO schema loader and the statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lingshu.data import (
    DataError,
    corpus_stats,
    detect_format,
    format_stats,
    load_spo_schema,
    read_documents,
    schema_coverage,
    write_documents,
)
from lingshu.data.jsonio import LAYOUT
from lingshu.schema import Document, Entity, Relation


def _write(path: Path, records: list, jsonl: bool = True) -> Path:
    if jsonl:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def _raw_triples(path: Path) -> list[set]:
    """Per record, the set of (key, typed_key, combined) straight from the JSON, no lingshu code."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        s = set()
        for t in rec["spo_list"]:
            o = t["object"]["@value"] if isinstance(t["object"], dict) else t["object"]
            ot = t["object_type"]["@value"] if isinstance(t["object_type"], dict) else t["object_type"]
            s.add(((t["subject"], t["predicate"], o), (t["subject"], t["subject_type"], t["predicate"], o, ot),
                   t.get("Combined")))
        out.append(s)
    return out


def _triples(docs) -> list[set]:
    return [{(r.key, r.typed_key, r.combined) for r in d.relations} for d in docs]


def _spo(subject, predicate, obj, stype="疾病", otype="症状", combined=False, **extra):
    return {"Combined": combined, "predicate": predicate, "subject": subject, "subject_type": stype,
            "object": {"@value": obj}, "object_type": {"@value": otype}, **extra}


# --- CMeIE on the shared files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cmeie(shared):
    return {name: read_documents(shared / "cmeie" / name) for name in ("CMeIE_train.jsonl", "CMeIE_dev.jsonl")}


@pytest.mark.parametrize("name,records", [("CMeIE_train.jsonl", 2585), ("CMeIE_dev.jsonl", 500)])
def test_cmeie_shared_round_trip_nested(shared, cmeie, tmp_path, name, records):
    path = shared / "cmeie" / name
    res = cmeie[name]
    assert detect_format(path) == "cmeie" and res.report.format == "cmeie"
    assert res.report.records_kept == records and res.report.ok
    raw = _raw_triples(path)
    assert _triples(res.documents) == raw  # the reader loses no triple
    # exact duplicate triples (6 in each file) are dropped, and counted
    n_raw = sum(len(json.loads(ln)["spo_list"]) for ln in path.read_text(encoding="utf-8").splitlines())
    assert res.report.relations == sum(len(s) for s in raw) == n_raw - res.report.relations_dropped
    assert res.report.relations_dropped == res.report.warnings["duplicate_relation"] == 6
    for d in res.documents:
        assert d.meta[LAYOUT] == "nested"
        for r in d.relations:
            for e in (r.subject, r.object):
                assert d.text[e.start : e.end] == e.text and e in d.entities
    out = tmp_path / "out.jsonl"
    summary = write_documents(res.documents, out, "cmeie")
    assert summary.relations == res.report.relations
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"text", "spo_list"} and isinstance(first["spo_list"][0]["object"], dict)
    back = read_documents(out)
    assert back.report.format == "cmeie" and back.report.ok and not back.report.warnings
    assert _triples(back.documents) == raw
    assert [d.relations for d in back.documents] == [d.relations for d in res.documents]  # same places
    assert ([[r.combined for r in d.relations] for d in back.documents]
            == [[r.combined for r in d.relations] for d in res.documents])  # the flag survives the trip


def test_cmeie_flattened_layout_round_trip(shared, cmeie, tmp_path):
    """Flattened records (plain-string object/object_type, start indices on every other record)
    read to the same triples and places, and are written back flattened."""
    path = shared / "cmeie" / "CMeIE_dev.jsonl"
    nested = cmeie["CMeIE_dev.jsonl"].documents
    flat = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        rec = json.loads(line)
        doc = nested[i]
        for t in rec["spo_list"]:
            t["object"] = t["object"]["@value"]
            t["object_type"] = t["object_type"]["@value"]
            if i % 2 == 0:  # start indices: where the nested read placed the arguments
                r = next(r for r in doc.relations if r.key == (t["subject"], t["predicate"], t["object"]))
                t["subject_start_idx"], t["object_start_idx"] = r.subject.start, r.object.start
        flat.append(rec)
    fpath = _write(tmp_path / "flat.jsonl", flat)
    res = read_documents(fpath)
    assert res.report.format == "cmeie" and res.report.ok
    assert not res.report.warnings["start_idx_mismatch"]
    assert _triples(res.documents) == _raw_triples(path)
    assert [d.relations for d in res.documents] == [d.relations for d in nested]
    assert all(d.meta[LAYOUT] == "flat" for d in res.documents)
    out = tmp_path / "flat_out.jsonl"
    write_documents(res.documents, out, "cmeie")
    rec = json.loads(out.read_text(encoding="utf-8").splitlines()[1])
    t = rec["spo_list"][0]
    assert isinstance(t["object"], str) and isinstance(t["object_type"], str) and "Combined" in t
    assert rec["text"][t["subject_start_idx"] :].startswith(t["subject"])
    back = read_documents(out)
    assert _triples(back.documents) == _raw_triples(path)
    assert [d.relations for d in back.documents] == [d.relations for d in nested]


def test_not_in_text_count_matches_independent_count(shared, cmeie, tmp_path):
    path = shared / "cmeie" / "CMeIE_dev.jsonl"

    def count(p: Path) -> int:
        n = 0
        for line in p.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            seen = set()
            for t in rec["spo_list"]:
                key = json.dumps(t, sort_keys=True, ensure_ascii=False)
                if key in seen:  # exact duplicates are dropped by the reader
                    continue
                seen.add(key)
                o = t["object"]["@value"]
                n += rec["text"].find(t["subject"]) < 0 or rec["text"].find(o) < 0
        return n

    rep = cmeie["CMeIE_dev.jsonl"].report
    assert rep.relations_unlocated == count(path) == 0  # every argument of the shared dev file is in its text
    # The same file with some arguments changed to strings absent from their texts.
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for i, rec in enumerate(recs):
        for j, t in enumerate(rec["spo_list"]):
            if (i + j) % 7 == 0:
                t["object"]["@value"] = "并不存在的宾语" + str(j)
            elif (i + j) % 11 == 0:
                t["subject"] = "并不存在的主语"
    mpath = _write(tmp_path / "mutated.jsonl", recs)
    res = read_documents(mpath)
    expected = count(mpath)
    assert expected > 100
    assert res.report.relations_unlocated == expected
    assert res.report.warnings["argument_not_in_text"] >= expected
    assert f"{expected:,} triples whose subject or object string is not in the text" in res.report.summary()
    assert corpus_stats(res.documents)["relations_unlocated"] == expected
    for d in res.documents:
        assert all(e.start >= 0 for e in d.entities)  # unlocated arguments are not entities
    # and they survive a round trip
    out = tmp_path / "mutated_out.jsonl"
    write_documents(res.documents, out, "cmeie")
    assert _triples(read_documents(out).documents) == _triples(res.documents)


# --- mention location policy -----------------------------------------------------------------


def _one(tmp_path, text, spos, **kw):
    res = read_documents(_write(tmp_path / "one.jsonl", [{"text": text, "spo_list": spos}]), **kw)
    return res.documents[0] if res.documents else None, res.report


def test_single_occurrence(tmp_path):
    doc, rep = _one(tmp_path, "糖尿病患者常见多饮多尿。", [_spo("糖尿病", "临床表现", "多饮")])
    (r,) = doc.relations
    assert (r.subject.start, r.subject.end, r.subject.type) == (0, 3, "疾病")
    assert (r.object.start, r.object.end, r.object.type) == (7, 9, "症状")
    assert sorted(doc.entities) == [Entity(0, 3, "疾病"), Entity(7, 9, "症状")]
    assert rep.mentions_ambiguous == 0 and rep.relations == 1 and rep.ok


def test_several_occurrences_take_the_closest_pair(tmp_path):
    # 头痛 occurs at 0 and 8, 恶心 once at 11: the subject nearest the object is the second.
    text = "头痛三天，发热。头痛伴恶心。"
    assert [i for i in range(len(text)) if text.startswith("头痛", i)] == [0, 8]
    doc, rep = _one(tmp_path, text, [_spo("头痛", "伴随", "恶心", stype="症状")])
    (r,) = doc.relations
    assert (r.subject.start, r.subject.end, r.object.start, r.object.end) == (8, 10, 11, 13)
    assert rep.mentions_ambiguous == 1 and not rep.warnings
    assert "1 arguments whose string occurs several times" in rep.summary()
    # both ambiguous: "甲乙" at 0 and 6, "丙" at 3 and 9 -> gaps (0,3)=1, (0,9)=7, (6,3)=2, (6,9)=1:
    # two pairs tie at gap 1, the earliest wins.
    text2 = "甲乙，丙，，甲乙，丙"
    doc2, rep2 = _one(tmp_path, text2, [_spo("甲乙", "p", "丙")])
    r2 = doc2.relations[0]
    assert (r2.subject.start, r2.object.start) == (0, 3)
    assert rep2.mentions_ambiguous == 2
    # the same string on both sides takes two different occurrences when it can
    doc3, _ = _one(tmp_path, "肺炎，肺炎", [_spo("肺炎", "同义词", "肺炎", otype="疾病")])
    r3 = doc3.relations[0]
    assert {r3.subject.start, r3.object.start} == {0, 3}


def test_start_idx_wins_when_it_matches(tmp_path):
    text = "头痛三天，发热。头痛伴恶心。"
    spo = {"predicate": "伴随", "subject": "头痛", "subject_type": "症状", "object": "恶心",
           "object_type": "症状", "subject_start_idx": 0}
    doc, rep = _one(tmp_path, text, [spo])
    r = doc.relations[0]
    assert r.subject.start == 0 and r.object.start == 11  # the file's index, not the closest pair
    assert r.combined is None and doc.meta[LAYOUT] == "flat"
    assert rep.mentions_ambiguous == 0 and not rep.warnings


@pytest.mark.parametrize("bad", [3, 100, -1, "0"])
def test_wrong_start_idx_is_reported_and_searched(tmp_path, bad):
    text = "头痛三天，发热。头痛伴恶心。"
    spo = {"predicate": "伴随", "subject": "头痛", "subject_type": "症状", "object": "恶心",
           "object_type": "症状", "subject_start_idx": bad, "object_start_idx": 11}
    doc, rep = _one(tmp_path, text, [spo])
    assert doc is not None and rep.records_kept == 1
    (p,) = rep.problems
    assert p.kind == "start_idx_mismatch" and p.field == "spo_list[0].subject_start_idx" and p.line == 1
    assert doc.relations[0].subject.start == 8  # fell back to the closest-pair policy
    assert rep.mentions_ambiguous == 1


def test_absent_string_keeps_the_triple_unlocated(tmp_path):
    doc, rep = _one(tmp_path, "患者发热三天。", [_spo("肺炎", "临床表现", "发热"), _spo("肺炎", "临床表现", "咳嗽")])
    r1, r2 = doc.relations
    assert (r1.subject.start, r1.subject.end, r1.subject.text) == (-1, -1, "肺炎") and not r1.located
    assert (r1.object.start, r1.object.end) == (2, 4)
    assert r2.object.start == -1 and r2.key == ("肺炎", "临床表现", "咳嗽")
    assert doc.entities == [Entity(2, 4, "症状")]  # unlocated arguments are not entities
    assert rep.relations == 2 and rep.relations_unlocated == 2
    assert rep.warnings["argument_not_in_text"] == 3
    assert any(p.field == "spo_list[1].object.@value" or p.field == "spo_list[1].object" for p in rep.problems)
    assert "2 triples whose subject or object string is not in the text" in rep.summary()


# --- CMeIE bad records ----------------------------------------------------------------------


def test_cmeie_bad_records_are_reported_and_skipped(tmp_path):
    good = {"text": "糖尿病患者多饮。", "spo_list": [_spo("糖尿病", "临床表现", "多饮")], "id": "a", "src": "x"}
    recs = [
        good,
        {"spo_list": []},  # 2: no text
        {"text": "糖尿病", "spo_list": {"a": 1}},  # 3: spo_list not a list
        {"text": "糖尿病多饮", "spo_list": [{"subject": "糖尿病", "subject_type": "疾病", "object": {"@value": "多饮"},
                                        "object_type": {"@value": "症状"}}]},  # 4: no predicate
        {"text": "糖尿病多饮", "spo_list": [_spo("", "临床表现", "多饮")]},  # 5: empty subject
        {"text": "糖尿病多饮", "spo_list": [_spo("糖尿病", "临床表现", "多饮", combined="yes")]},  # 6
        {"text": "糖尿病多饮", "spo_list": [{"predicate": "p", "subject": "糖尿病", "subject_type": "疾病",
                                        "object": {"value": "多饮"}, "object_type": {"@value": "症状"}}]},  # 7
    ]
    path = _write(tmp_path / "bad.jsonl", recs)
    res = read_documents(path, format="cmeie")
    assert res.report.records_read == 7 and res.report.records_kept == 1 and res.report.records_skipped == 6
    where = {(p.line, p.field, p.kind) for p in res.report.problems}
    assert where == {
        (2, "text", "missing_text"),
        (3, "spo_list", "bad_field"),
        (4, "spo_list[0].predicate", "missing_field"),
        (5, "spo_list[0].subject", "empty_field"),
        (6, "spo_list[0].Combined", "bad_field"),
        (7, "spo_list[0].object", "missing_field"),
    }
    doc = res.documents[0]
    assert doc.id == "a" and doc.meta["src"] == "x"
    with pytest.raises(DataError, match=r"bad\.jsonl:2: text:"):
        read_documents(path, format="cmeie", strict=True)
    # unknown fields and the id are written back; the remembered layout is not a field
    out = tmp_path / "o.jsonl"
    write_documents(res.documents, out, "cmeie")
    rec = json.loads(out.read_text(encoding="utf-8"))
    assert rec == {"id": "a", "text": good["text"], "spo_list": good["spo_list"], "src": "x"}


def test_cmeie_labels_are_allowed_predicates(tmp_path):
    recs = [{"text": "糖尿病多饮", "spo_list": [_spo("糖尿病", "临床表现", "多饮")]},
            {"text": "糖尿病用胰岛素", "spo_list": [_spo("糖尿病", "药物治疗", "胰岛素", otype="药物")]}]
    res = read_documents(_write(tmp_path / "l.jsonl", recs), labels={"临床表现"})
    assert res.report.records_kept == 1 and res.report.errors["unknown_label"] == 1
    assert res.report.problems[0].field == "spo_list[0].predicate" and res.report.problems[0].line == 2


def test_writer_defaults_for_built_documents(tmp_path):
    """Documents built in code (predictions): nested layout, Combined false when unknown."""
    s, o = Entity(0, 3, "疾病", "糖尿病"), Entity(-1, -1, "症状", "口渴")
    doc = Document("糖尿病多饮", [s], relations=[Relation(s, "临床表现", o, score=0.9)])
    out = tmp_path / "p.jsonl"
    write_documents([doc], out, "cmeie")
    rec = json.loads(out.read_text(encoding="utf-8"))
    assert rec["spo_list"] == [_spo("糖尿病", "临床表现", "口渴", combined=False)]


# --- Document / Relation ---------------------------------------------------------------------


def test_document_and_relation_vocabulary():
    d = Document("abc", [Entity(0, 1, "x", "a")], id="1", meta={"k": 1}, source="f:1")  # positional use unchanged
    assert d.relations == [] and d.text_pair is None and d.label is None and d.label_scores is None
    assert set(d.to_dict()) == {"text", "entities", "id"}
    a, b = Entity(0, 1, "x", "a"), Entity(-1, -1, "y", "zz")
    r = Relation(a, "p", b, combined=True, score=0.5)
    assert r.key == ("a", "p", "zz") and r.typed_key == ("a", "x", "p", "zz", "y")
    assert r == Relation(a, "p", b, combined=True)  # score not compared
    # nor `combined`: a predicted triple (combined unknown) equals its gold twin, in sets too
    assert r == Relation(a, "p", b, combined=False) == Relation(a, "p", b)
    assert {Relation(a, "p", b)} & {Relation(a, "p", b, combined=False)} == {Relation(a, "p", b)}
    assert r != Relation(a, "q", b) and r != Relation(b, "p", a)
    # unlocated arguments with different strings are different triples
    assert Relation(a, "p", Entity(-1, -1, "y", "q")) != Relation(a, "p", Entity(-1, -1, "y", "w"))
    assert len({r, Relation(a, "p", b, combined=True)}) == 1
    d2 = Document("abc", relations=[r], text_pair="def", label="1", label_scores={"1": 0.75, "0": 0.25})
    dd = d2.to_dict()
    assert dd["relations"][0] == {"subject": a.to_dict(), "predicate": "p", "object": b.to_dict(),
                                  "combined": True, "score": 0.5}
    assert dd["text_pair"] == "def" and dd["label"] == "1" and dd["label_scores"] == {"1": 0.75, "0": 0.25}
    assert "label='1'" in repr(d2) and "a-p->zz" in repr(d2)


# --- KUAKE-QQR pairs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qqr_dev(shared):
    return read_documents(shared / "kuake-qqr" / "KUAKE-QQR_dev.json")


def test_qqr_dev_na_record_is_reported_and_skipped(shared, qqr_dev):
    path = shared / "kuake-qqr" / "KUAKE-QQR_dev.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    rep = qqr_dev.report
    assert detect_format(path) == "pair" and rep.format == "pair"
    assert rep.records_read == 1600 and rep.records_kept == 1599 and rep.records_skipped == 1
    (p,) = rep.problems
    assert p.kind == "unknown_label" and p.field == "label" and "'s9'" in p.message and "'NA'" in p.message
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[p.line - 1].strip() == "{" and lines[p.line].strip() == '"id": "s9",'
    assert "s9" not in {d.id for d in qqr_dev.documents}
    good = [r for r in raw if r["label"] != "NA"]
    assert [(d.id, d.text, d.text_pair, d.label) for d in qqr_dev.documents] == [
        (r["id"], r["query1"], r["query2"], r["label"]) for r in good
    ]
    assert dict(rep.labels) == {"0": 1006, "1": 260, "2": 333} and rep.unlabelled == 0
    summary = rep.summary()
    assert "1 skipped" in summary and "s9" in summary and "entities" not in summary.splitlines()[0]
    with pytest.raises(DataError, match="'s9'.*'NA'"):
        read_documents(path, strict=True)
    # an explicit allowed set replaces the default
    res = read_documents(path, labels={"0", "1", "2", "NA"})
    assert res.report.records_kept == 1600 and res.report.ok


def test_qqr_test_file_is_unlabelled(shared):
    res = read_documents(shared / "kuake-qqr" / "KUAKE-QQR_test.json")
    assert res.report.ok and res.report.records_kept == 1596 and res.report.unlabelled == 1596
    assert all(d.label is None and d.text_pair for d in res.documents)
    assert "1,596 unlabelled" in res.report.summary()


def test_qqr_missing_or_bad_fields(tmp_path):
    recs = [
        {"id": "a1", "query1": "头痛", "query2": "头疼", "label": "2"},
        {"id": "a2", "query1": "头痛", "label": "1"},
        {"id": "a3", "query1": "头痛", "query2": 5, "label": "1"},
        {"id": "a4", "query1": "头痛", "query2": "头疼", "label": 2},  # int label -> "2"
        {"id": "a5", "query1": "头痛", "query2": "头疼", "label": ["1"]},
        {"id": "a6", "query1": "头痛", "query2": "头疼"},  # no label: unlabelled
    ]
    path = _write(tmp_path / "q.json", recs, jsonl=False)
    res = read_documents(path)
    assert res.report.format == "pair"
    assert [d.id for d in res.documents] == ["a1", "a4", "a6"]
    assert [d.label for d in res.documents] == ["2", "2", None]
    assert res.report.records_skipped == 3 and res.report.unlabelled == 1
    probs = {(p.field, p.kind): p for p in res.report.problems}
    assert set(probs) == {("query2", "missing_text"), ("query2", "bad_text"), ("label", "bad_label")}
    assert "'a2'" in probs[("query2", "missing_text")].message
    assert "'a3'" in probs[("query2", "bad_text")].message
    lines = path.read_text(encoding="utf-8").splitlines()
    assert '"a2"' in lines[probs[("query2", "missing_text")].line]


def test_pair_jsonl_round_trip(tmp_path):
    recs = [
        {"text1": "头痛怎么办", "text2": "头疼如何处理", "label": "2", "id": 7},
        {"text1": "感冒吃什么", "text2": "发烧吃什么", "label": "cat"},
        {"text1": "孕妇能吃芒果吗", "text2": "芒果的营养", "extra": [1]},
    ]
    path = _write(tmp_path / "p.jsonl", recs)
    assert detect_format(path) == "pair"
    res = read_documents(path)
    assert res.report.ok and res.report.records_kept == 3  # JSON lines: any label allowed
    docs = res.documents
    assert [d.label for d in docs] == ["2", "cat", None] and docs[0].id == "7"
    docs[0].label_scores = {"2": 0.8, "0": 0.2}
    out = tmp_path / "o.jsonl"
    s = write_documents(docs, out, "pair")
    assert s.documents == 3 and s.labels == 2
    written = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert written[0] == {"id": 7, "text1": "头痛怎么办", "text2": "头疼如何处理", "label": "2",
                          "probabilities": {"2": 0.8, "0": 0.2}}
    assert written[2] == {"text1": "孕妇能吃芒果吗", "text2": "芒果的营养", "extra": [1]}
    back = read_documents(out).documents
    assert [(d.id, d.text, d.text_pair, d.label, d.label_scores) for d in back] == [
        ("7", "头痛怎么办", "头疼如何处理", "2", {"2": 0.8, "0": 0.2}),
        (None, "感冒吃什么", "发烧吃什么", "cat", None),
        (None, "孕妇能吃芒果吗", "芒果的营养", None, None),
    ]
    # KUAKE's own layout restricts labels to 0/1/2 by default
    res2 = read_documents(_write(tmp_path / "k.json", [{"id": "s1", "query1": "a", "query2": "b", "label": "cat"}],
                                 jsonl=False))
    assert res2.report.records_skipped == 1 and res2.report.errors["unknown_label"] == 1


def test_pair_writer_writes_predicted_labels(shared, tmp_path):
    res = read_documents(shared / "kuake-qqr" / "KUAKE-QQR_test.json")
    docs = res.documents
    for i, d in enumerate(docs):
        d.label = str(i % 3)  # a "prediction"
    out = tmp_path / "KUAKE-QQR_test_pred.json"
    write_documents(docs, out, "pair")
    raw = json.loads((shared / "kuake-qqr" / "KUAKE-QQR_test.json").read_text(encoding="utf-8"))
    written = json.loads(out.read_text(encoding="utf-8"))  # one JSON list: the CBLUE submission layout
    assert [r["id"] for r in written] == [r["id"] for r in raw]
    assert [(r["query1"], r["query2"]) for r in written] == [(r["query1"], r["query2"]) for r in raw]
    assert [r["label"] for r in written] == [str(i % 3) for i in range(len(raw))]
    assert all(set(r) == {"id", "query1", "query2", "label"} for r in written)
    back = read_documents(out)
    assert back.report.format == "pair" and back.report.ok
    assert dict(back.report.labels) == {"0": 532, "1": 532, "2": 532}
    with pytest.raises(DataError, match="text_pair"):
        write_documents([Document("单句")], tmp_path / "x.json", "pair")


# --- SPO schema -------------------------------------------------------------------------------


def test_spo_schema_on_shared_file(shared, cmeie):
    pats = load_spo_schema(shared / "cmeie" / "53_schemas.json")
    assert len(pats) == 53 and len({p for _, p, _ in pats}) == 44
    assert pats[0] == ("疾病", "预防", "其他")
    cov = schema_coverage(cmeie["CMeIE_dev.jsonl"].documents, pats)
    assert cov["triples"] == cmeie["CMeIE_dev.jsonl"].report.relations and cov["outside_schema"] == 0
    # the same triples against a schema missing one pattern
    drop = ("疾病", "临床表现", "症状")
    assert drop in pats
    n_drop = sum(1 for d in cmeie["CMeIE_dev.jsonl"].documents for r in d.relations
                 if (r.subject.type, r.predicate, r.object.type) == drop)
    cov2 = schema_coverage(cmeie["CMeIE_dev.jsonl"].documents, [p for p in pats if p != drop])
    assert n_drop > 0 and cov2["outside_schema"] == n_drop and cov2["outside"] == [[*drop, n_drop]]
    assert cov2["in_schema"] == cov["triples"] - n_drop


def test_spo_schema_bad_files(tmp_path):
    ok = {"subject_type": "疾病", "predicate": "预防", "object_type": "其他"}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(ok) + "\n\n" + json.dumps({"subject_type": "疾病", "predicate": "阶段"}) + "\n")
    with pytest.raises(DataError, match=r"s\.json:3: object_type: no \"object_type\" field"):
        load_spo_schema(p)
    p.write_text(json.dumps(ok) + "\n{not json\n")
    with pytest.raises(DataError, match=r"s\.json:2: invalid JSON"):
        load_spo_schema(p)
    p.write_text(json.dumps({**ok, "predicate": ""}) + "\n")
    with pytest.raises(DataError, match=r"s\.json:1: predicate:"):
        load_spo_schema(p)
    other = {"subject_type": "疾病", "predicate": "阶段", "object_type": "其他"}
    p.write_text("\n".join(json.dumps(x) for x in (other, ok, other)) + "\n")
    assert load_spo_schema(p) == [("疾病", "阶段", "其他"), ("疾病", "预防", "其他")]
    p.write_text("\n")
    with pytest.raises(DataError, match="no SPO pattern"):
        load_spo_schema(p)


# --- statistics -------------------------------------------------------------------------------


def test_stats_for_relations_and_pairs():
    s, o, u = Entity(0, 2, "疾病", "肺炎"), Entity(3, 5, "症状", "发热"), Entity(-1, -1, "症状", "咳嗽")
    docs = [
        Document("肺炎，发热", [s, o], relations=[Relation(s, "临床表现", o), Relation(s, "临床表现", u)]),
        Document("肺炎，发热", [s], relations=[Relation(s, "病因", o)]),
        Document("无", []),
    ]
    st = corpus_stats(docs)
    assert st["relations"] == 3 and st["relations_per_predicate"] == {"临床表现": 2, "病因": 1}
    assert st["relations_unlocated"] == 1 and st["texts_without_relations"] == 1
    assert "labels" not in st
    table = format_stats(st)
    assert "triples with an argument not in the text 1" in table
    assert any(line.split()[:2] == ["临床表现", "2"] for line in table.splitlines())
    assert "relations" not in corpus_stats([Document("无", [Entity(0, 1, "x")])])  # NER stats unchanged

    pairs = [Document("头痛", text_pair="头疼怎么办", label="2"), Document("a", text_pair="bcd", label="0"),
             Document("ab", text_pair="c", label="2"), Document("ab", text_pair="cd")]
    st = corpus_stats(pairs)
    assert st["labels"] == {"2": 2, "0": 1} and st["unlabelled"] == 1
    assert st["text_pair_length"]["max"] == 5 and st["text_pair_length"]["min"] == 1
    table = format_stats(st)
    assert "text_pair length" in table and "entities" not in table
    assert any(line.split() == ["2", "2", "66.7%"] for line in table.splitlines())
