"""Data layer: readers on the real shared corpora, validation with line numbers, CoNLL tag
schemes, write -> read round trips, format detection and corpus statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lingshu.data import (
    FORMATS,
    DataError,
    ValidationReport,
    corpus_stats,
    detect_format,
    format_stats,
    iter_documents,
    read_documents,
    write_documents,
)
from lingshu.schema import Document, Entity
from lingshu.text.tags import bios_to_spans, spans_to_bios

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")


def _problems(report, kind=None):
    return [p for p in report.problems if kind is None or p.kind == kind]


# --- real files ---------------------------------------------------------------------------

REAL = {
    "cluener/train.json": ("cluener", 10_748, True),
    "cluener/dev.json": ("cluener", 1_343, True),
    "cluener/test.json": ("cluener", 1_345, False),
    "cmeee/CMeEE_train.json": ("cmeee", 15_000, True),
    "cmeee/CMeEE_dev.json": ("cmeee", 5_000, True),
    "cmeee/CMeEE_test.json": ("cmeee", 3_000, False),
}


@pytest.fixture(scope="module")
def real():
    return {name: read_documents(DATA / name) for name in REAL}


@needs_data
@pytest.mark.parametrize("name", list(REAL))
def test_real_files_read_completely(real, name):
    fmt, n, labelled = REAL[name]
    res = real[name]
    assert res.report.format == fmt
    assert res.report.records_read == n
    assert len(res.documents) == n
    assert res.report.records_skipped == 0 and res.report.ok
    n_ents = sum(len(d.entities) for d in res.documents)
    assert (n_ents > 0) == labelled
    assert res.report.entities == n_ents
    for d in res.documents:
        for e in d.entities:
            assert 0 <= e.start < e.end <= len(d.text)
            assert d.text[e.start : e.end] == e.text
    assert res.documents[0].source == f"{DATA / name}:{1 if fmt == 'cluener' else 2}"


@needs_data
def test_real_file_details(real):
    # Gold counts of the shared files (entity mentions with inclusive ends converted).
    assert real["cluener/dev.json"].report.entities == 3_072
    assert real["cmeee/CMeEE_dev.json"].report.entities == 20_300
    # CMeEE train holds two empty entities (end_idx = start_idx - 1, entity ""): dropped, counted.
    tr = real["cmeee/CMeEE_train.json"].report
    assert tr.warnings["empty_entity"] == 2 and tr.entities_dropped == 2
    assert tr.entities == 61_796 - 2
    # Nested entities are legitimate in CMeEE: warnings, records kept.
    assert tr.warnings["overlap"] > 1000
    assert real["cluener/dev.json"].report.warnings["overlap"] == 0
    # The CLUENER test file's ids are ints; kept as strings with the original in meta.
    first = real["cluener/test.json"].documents[0]
    assert first.id == "0" and first.meta["id"] == 0
    # CMeEE record lines point at the record's "{" in the indented list.
    dev = real["cmeee/CMeEE_dev.json"].documents
    lines = (DATA / "cmeee/CMeEE_dev.json").read_text(encoding="utf-8").split("\n")
    for d in dev[:50] + dev[-50:]:
        ln = int(d.source.rsplit(":", 1)[1])
        assert lines[ln - 1].strip() == "{"
        assert json.dumps(d.text, ensure_ascii=False) in lines[ln]


@needs_data
def test_cmeee_train_reads_every_record():
    # how fast: benchmarks/bench_data_speed.py (no timing in tests)
    res = read_documents(DATA / "cmeee/CMeEE_train.json")
    assert len(res.documents) == 15_000


@needs_data
def test_summary_lists_counts_and_first_problems(real):
    text = real["cmeee/CMeEE_train.json"].report.summary(limit=3)
    assert "15,000 records read" in text and "empty_entity 2" in text
    assert text.count("warning: ") == 3 and "more:" in text


# --- malformed input ------------------------------------------------------------------


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cl(text, label):
    return json.dumps({"text": text, "label": label}, ensure_ascii=False)


@pytest.fixture
def bad_cluener(tmp_path):
    return _write(
        tmp_path / "bad.json",
        [
            _cl("张三在北京", {"name": {"张三": [[0, 1]]}, "address": {"北京": [[3, 4]]}}),  # 1 ok
            '{"text": "李四", "label": {',  # 2 bad JSON
            _cl("王五去上海", {"address": {"上海": [[3, 9]]}}),  # 3 end out of range
            _cl("赵六去广州", {"address": {"深圳": [[3, 4]]}}),  # 4 text mismatch
            _cl("", {}),  # 5 empty text
            _cl("孙七在杭州", {"city": {"杭州": [[3, 4]]}}),  # 6 unknown label (with labels)
            _cl("南京大学在南京", {"organization": {"南京大学": [[0, 3]]}, "address": {"南京": [[0, 1], [5, 6]]}}),  # 7 nested
            "",  # 8 blank: not a record
            _cl("周八", {"name": {"周八": [[0, 1]]}}),  # 9 ok
        ],
    )


def test_malformed_cluener_lines_fields_and_skips(bad_cluener):
    labels = {"name", "address", "organization"}
    res = read_documents(bad_cluener, labels=labels)
    r = res.report
    assert r.format == "cluener"
    assert r.records_read == 8 and r.records_kept == 3 and r.records_skipped == 5
    assert [d.text for d in res.documents] == ["张三在北京", "南京大学在南京", "周八"]
    errs = {p.line: p for p in r.problems if p.severity == "error"}
    assert errs[2].kind == "bad_json"
    assert errs[3].kind == "offset_out_of_range" and errs[3].field == 'label.address["上海"][0][1]'
    assert "9 is beyond the text length 5" in errs[3].message
    assert errs[4].kind == "text_mismatch" and errs[4].field == 'label.address["深圳"]'
    assert errs[5].kind == "empty_text" and errs[5].field == "text"
    assert errs[6].kind == "unknown_label" and errs[6].field == "label.city"
    assert dict(r.errors) == {"bad_json": 1, "offset_out_of_range": 1, "text_mismatch": 1, "empty_text": 1, "unknown_label": 1}
    # Nested span: a warning on line 7, the record is kept with all three entities.
    (ov,) = _problems(r, "overlap")
    assert ov.line == 7 and ov.severity == "warning"
    assert len(res.documents[1].entities) == 3
    # Without a label set the unknown type is accepted.
    assert read_documents(bad_cluener).report.records_kept == 4


def test_strict_raises_with_file_and_line(bad_cluener):
    with pytest.raises(DataError, match=r"bad\.json:2: invalid JSON") as ei:
        read_documents(bad_cluener, strict=True)
    assert ei.value.problem.line == 2 and ei.value.problem.kind == "bad_json"
    # Drop the bad JSON line: the next error is the offset on line 2 (was 3).
    lines = bad_cluener.read_text(encoding="utf-8").split("\n")
    _write(bad_cluener, [lines[0]] + lines[2:])
    with pytest.raises(DataError, match=r'bad\.json:2: label\.address\["上海"\]\[0\]\[1\]: 9 is beyond the text length 5'):
        read_documents(bad_cluener, strict=True)


def test_allow_overlap_false_makes_overlaps_errors(bad_cluener):
    res = read_documents(bad_cluener, allow_overlap=False)
    assert res.report.errors["overlap"] == 1
    assert "南京大学在南京" not in [d.text for d in res.documents]
    with pytest.raises(DataError, match=r"bad\.json:2:"):  # strict still stops at the first error
        read_documents(bad_cluener, allow_overlap=False, strict=True)


def _cmeee_file(path: Path, records: list[str]) -> Path:
    # Indented like the real files: each record spans several lines.
    path.write_text("[\n" + ",\n".join(records) + "\n]\n", encoding="utf-8")
    return path


def _rec(text, ents):
    return json.dumps({"text": text, "entities": ents}, ensure_ascii=False, indent=2)


def _ent(s, e, t, ent):
    return {"start_idx": s, "end_idx": e, "type": t, "entity": ent}


def test_malformed_cmeee(tmp_path):
    good = _rec("患者有高血压", [_ent(3, 5, "dis", "高血压")])
    out_of_range = _rec("头痛三天", [_ent(0, 1, "sym", "头痛"), _ent(0, 1, "sym", "头痛"), _ent(2, 57, "sym", "三天")])
    broken = '{\n  "text": "发热",\n  "entities": [{"start_idx": 0 "end_idx": 1}]\n}'
    not_int = _rec("咳嗽", [_ent("0", 1, "sym", "咳嗽")])
    reversed_ = _rec("咳嗽咳痰", [_ent(3, 1, "sym", "")])
    nested = _rec("糖尿病肾病", [_ent(0, 4, "dis", "糖尿病肾病"), _ent(0, 2, "dis", "糖尿病")])
    missing = json.dumps({"entities": []})
    path = _cmeee_file(tmp_path / "CMeEE_bad.json", [good, out_of_range, broken, not_int, reversed_, nested, good, missing])
    text = path.read_text(encoding="utf-8").split("\n")
    starts = [i + 1 for i, ln in enumerate(text) if ln.startswith("{")]
    assert len(starts) == 8

    res = read_documents(path)
    r = res.report
    assert r.format == "cmeee"
    assert r.records_read == 8 and r.records_kept == 3 and r.records_skipped == 5
    by_line = {p.line: p for p in r.problems if p.severity == "error"}
    p = by_line[starts[1]]
    assert (p.kind, p.field) == ("offset_out_of_range", "entities[2].end_idx")
    assert str(p) == f"{path}:{starts[1]}: entities[2].end_idx: 57 is beyond the text length 4"
    assert by_line[starts[2]].kind == "bad_json"  # and reading went on after it
    assert (by_line[starts[3]].kind, by_line[starts[3]].field) == ("bad_offset", "entities[0].start_idx")
    assert (by_line[starts[4]].kind, by_line[starts[4]].field) == ("start_after_end", "entities[0].end_idx")
    assert (by_line[starts[7]].kind, by_line[starts[7]].field) == ("missing_text", "text")
    # The duplicate in the skipped record is reported but not counted as dropped from kept data.
    assert r.warnings["duplicate_entity"] == 1 and r.entities_dropped == 0
    assert r.warnings["overlap"] == 1
    assert [d.text for d in res.documents] == ["患者有高血压", "糖尿病肾病", "患者有高血压"]
    assert res.documents[1].source == f"{path}:{starts[5]}"

    with pytest.raises(DataError, match=rf"CMeEE_bad\.json:{starts[1]}: entities\[2\]\.end_idx: 57 is beyond"):
        read_documents(path, strict=True)


def test_cmeee_not_a_list_and_unclosed(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('[{"text": "发热", "entities": []}', encoding="utf-8")
    res = read_documents(p, format="cmeee")
    assert len(res.documents) == 1 and res.report.errors["bad_json"] == 1
    p.write_text('{"text": "发热"}', encoding="utf-8")
    with pytest.raises(DataError, match="x.json:1: expected a JSON list"):
        read_documents(p, format="cmeee", strict=True)


def test_spans_validation_and_duplicates(tmp_path):
    path = _write(
        tmp_path / "pred.jsonl",
        [
            json.dumps({"id": "a", "text": "肺炎", "entities": [
                {"start": 0, "end": 2, "type": "dis", "score": 0.91},
                {"start": 0, "end": 2, "type": "dis"}]}, ensure_ascii=False),
            json.dumps({"text": "肺炎", "entities": [{"start": 0, "end": 2.0, "type": "dis"}]}, ensure_ascii=False),
            json.dumps({"text": "肺炎", "entities": [{"start": 0, "type": "dis"}]}, ensure_ascii=False),
            json.dumps({"text": "肺炎", "entities": [{"start": 0, "end": 1, "type": "dis", "text": "肺炎"}]}, ensure_ascii=False),
            json.dumps({"text": 5, "entities": []}),
            json.dumps(["not", "an", "object"]),
        ],
    )
    res = read_documents(path)
    r = res.report
    assert r.format == "spans" and r.records_kept == 1 and r.records_skipped == 5
    (doc,) = res.documents
    assert doc.id == "a" and doc.entities == [Entity(0, 2, "dis", "肺炎")] and doc.entities[0].score == 0.91
    assert r.warnings["duplicate_entity"] == 1 and r.entities_dropped == 1
    errs = {p.line: (p.kind, p.field) for p in r.problems if p.severity == "error"}
    assert errs == {
        2: ("bad_offset", "entities[0].end"),
        3: ("missing_field", "entities[0]"),
        4: ("text_mismatch", "entities[0].text"),
        5: ("bad_text", "text"),
        6: ("bad_record", ""),
    }


def test_iter_documents_streams_and_fills_report(bad_cluener):
    report = ValidationReport()
    it = iter_documents(bad_cluener, report=report)
    first = next(it)
    assert first.text == "张三在北京" and report.records_read == 1
    rest = list(it)
    assert len(rest) == 3 and report.records_read == 8 and report.records_skipped == 4


# --- CoNLL ----------------------------------------------------------------------------


def _conll(tmp_path, body: str, name="x.conll"):
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return read_documents(p)


def _spans(doc):
    return [(e.start, e.end, e.type, e.text) for e in doc.ents]


@pytest.mark.parametrize(
    "tags",
    [
        "B-dis I-dis I-dis O B-sym O",  # BIO
        "B_dis I_dis I_dis O S_sym O",  # BIOS, underscore spelling
        "B-dis I-dis E-dis O S-sym O",  # BIOES
        "B-dis M-dis E-dis O S-sym O",  # BMES
        "B-dis I_dis E-dis O U-sym O",  # mixed spellings, BILOU unit
    ],
)
def test_conll_schemes(tmp_path, tags):
    chars = "高血压伴头痛"
    body = "".join(f"{c}\t{t}\n" for c, t in zip(chars, tags.split())) + "\n" + "好 O\n"
    res = _conll(tmp_path, body)
    assert res.report.ok and res.report.warnings.get("ill_formed_tags", 0) == 0
    a, b = res.documents
    assert a.text == chars and b.text == "好"
    assert _spans(a) == [(0, 3, "dis", "高血压"), (4, 5, "sym", "头")]
    assert a.source.endswith("x.conll:1") and b.source.endswith("x.conll:8")


def test_conll_repairs_are_counted_with_lines(tmp_path):
    body = (
        "-DOCSTART- O\n\n"
        "咳 O\n嗽 I-sym\n发 B-sym\n热 I-dis\n"  # stray I-sym (line 4), type change (line 6)
        "\n\n"
        "中 NN B-dis\n风 NN E-dis\n"  # extra middle column ignored
        "\n"
        "\u3000 O\n头 S-bod\n"  # a full-width space as the character
    )
    res = _conll(tmp_path, body)
    r = res.report
    assert r.records_read == 3 and r.records_kept == 3
    assert r.warnings["ill_formed_tags"] == 2
    assert [p.line for p in _problems(r, "ill_formed_tags")] == [4, 6]
    a, b, c = res.documents
    assert _spans(a) == [(1, 2, "sym", "嗽"), (2, 3, "sym", "发"), (3, 4, "dis", "热")]
    assert _spans(b) == [(0, 2, "dis", "中风")]
    assert c.text == "\u3000头" and _spans(c) == [(1, 2, "bod", "头")]


def test_conll_errors_skip_the_sentence(tmp_path):
    res = _conll(tmp_path, "头 B-sym\n痛 X-sym\n\n发\n热 O\n\n好 O\n")
    r = res.report
    assert r.records_read == 3 and r.records_skipped == 2
    assert [(p.line, p.kind, p.field) for p in r.problems] == [(2, "bad_tag", "tag"), (4, "bad_line", "columns")]
    assert [d.text for d in res.documents] == ["好"]
    res = read_documents(tmp_path / "x.conll", labels={"dis"})
    assert res.report.errors["unknown_label"] == 0  # the sym sentence was already skipped
    with pytest.raises(DataError, match=r"x\.conll:2: tag: 'X-sym'"):
        read_documents(tmp_path / "x.conll", strict=True)


# --- writers: round trips on real data ----------------------------------------------------


def _keys(docs):
    return [(d.text, sorted(e.key for e in d.entities)) for d in docs]


@needs_data
@pytest.mark.parametrize(
    "name,fmt",
    [("cluener/train.json", "cluener"), ("cluener/test.json", "cluener"), ("cmeee/CMeEE_dev.json", "cmeee"),
     ("cmeee/CMeEE_dev.json", "spans"), ("cluener/dev.json", "spans"), ("cmeee/CMeEE_test.json", "text")],
)
def test_round_trip_lossless(real, tmp_path, name, fmt):
    docs = real[name].documents
    out = tmp_path / f"out.{fmt}"
    s = write_documents(docs, out, format=fmt)
    assert s.documents == len(docs) and s.entities_dropped == 0
    assert detect_format(out) == fmt
    back = read_documents(out)
    assert back.report.ok and len(back.documents) == len(docs)
    assert _keys(back.documents) == _keys(docs)
    if fmt in ("cluener", "cmeee", "spans"):
        assert [d.id for d in back.documents] == [d.id for d in docs]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was moved into place


@needs_data
def test_round_trip_conll_loses_only_counted_nested(real, tmp_path):
    docs = real["cmeee/CMeEE_dev.json"].documents
    s = write_documents(docs, tmp_path / "dev.conll", format="conll")

    def flatten(n, keys):  # what BIOS can hold: the longer of overlapping entities
        tags, dropped = spans_to_bios(n, [(s, e - 1, t) for s, e, t in keys])
        return sorted((s, e + 1, t) for s, e, t in bios_to_spans(tags)), [(s, e + 1, t) for s, e, t in dropped]

    expected = [flatten(len(d.text), [e.key for e in d.entities]) for d in docs]
    n_dropped = sum(len(dr) for _, dr in expected)
    assert n_dropped > 100 and s.entities_dropped == n_dropped
    assert s.entities + s.entities_dropped == sum(len(d.entities) for d in docs)
    back = read_documents(tmp_path / "dev.conll")
    assert back.report.ok and back.report.warnings.get("ill_formed_tags", 0) == 0
    assert [d.text for d in back.documents] == [d.text for d in docs]
    assert [sorted(e.key for e in d.entities) for d in back.documents] == [kept for kept, _ in expected]
    # What is kept is the longer entity of each nested pair.
    for (kept, dropped) in expected:
        for ds, de, _ in dropped:
            assert any(ks <= ds < de <= ke or (ds < ke and ks < de and ke - ks >= de - ds) for ks, ke, _ in kept)


def test_spans_writer_keeps_scores_and_meta(tmp_path):
    docs = [Document("阿司匹林", [Entity(0, 4, "dru", "阿司匹林", score=0.87654)], id="7", meta={"src": "x"})]
    write_documents(docs, tmp_path / "p.jsonl")  # spans by default
    rec = json.loads((tmp_path / "p.jsonl").read_text(encoding="utf-8"))
    assert rec == {"id": "7", "text": "阿司匹林", "entities": [
        {"start": 0, "end": 4, "type": "dru", "text": "阿司匹林", "score": 0.8765}], "src": "x"}
    back = read_documents(tmp_path / "p.jsonl").documents[0]
    assert back.entities[0].score == pytest.approx(0.8765) and back.meta == {"src": "x"}


def test_writers_convert_to_inclusive_ends(tmp_path):
    doc = Document("患者高血压", [Entity(2, 5, "dis", "高血压"), Entity(4, 5, "sym", "压")])
    write_documents([doc], tmp_path / "a.json", format="cmeee")
    (rec,) = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert rec["entities"][0] == {"start_idx": 2, "end_idx": 4, "type": "dis", "entity": "高血压"}
    write_documents([doc], tmp_path / "b.json", format="cluener")
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))["label"] == {
        "dis": {"高血压": [[2, 4]]}, "sym": {"压": [[4, 4]]}}
    s = write_documents([doc], tmp_path / "c.conll", format="conll")
    assert s.entities == 1 and s.entities_dropped == 1
    assert (tmp_path / "c.conll").read_text(encoding="utf-8").split("\n")[:5] == ["患 O", "者 O", "高 B-dis", "血 I-dis", "压 I-dis"]


def test_failed_write_leaves_target_untouched(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(DataError, match="line break"):
        write_documents([Document("好"), Document("a\nb")], target, format="text")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(DataError, match="cannot write format"):
        write_documents([], target, format="xml")


def test_bom_text_survives_line_formats(tmp_path):
    docs = [Document("\ufeff头痛", [Entity(1, 3, "sym", "头痛")]), Document(" 发热", [])]
    for fmt in ("conll", "text"):
        write_documents(docs, tmp_path / f"x.{fmt}", format=fmt)
        back = read_documents(tmp_path / f"x.{fmt}", format=fmt).documents
        assert [d.text for d in back] == ["\ufeff头痛", " 发热"]
    assert [e.key for e in back[0].entities] == []  # text format carries no entities
    assert read_documents(tmp_path / "x.conll").documents[0].entities == [Entity(1, 3, "sym")]


# --- detection ------------------------------------------------------------------------


def test_detect_format(tmp_path):
    if DATA.is_dir():
        assert detect_format(DATA / "cluener/dev.json") == "cluener"
        assert detect_format(DATA / "cluener/test.json") == "cluener"
        assert detect_format(DATA / "cmeee/CMeEE_dev.json") == "cmeee"
        assert detect_format(DATA / "corpus/medical_clinical_misc.txt") == "text"
    spans = _write(tmp_path / "p.json", [json.dumps({"text": "a", "entities": []})])
    conll = _write(tmp_path / "a.txt", ["头 B-sym", "痛 I_sym", "", "好 O"])
    text = _write(tmp_path / "b.txt", ["患者 三天前 发热", "咳嗽"])
    cl = _write(tmp_path / "c.jsonl", [json.dumps({"text": "a", "label": {}})])
    (tmp_path / "d.bio").write_text("", encoding="utf-8")
    assert detect_format(spans) == "spans"
    assert detect_format(conll) == "conll"
    assert detect_format(text) == "text"
    assert detect_format(cl) == "cluener"
    assert detect_format(tmp_path / "d.bio") == "conll"
    assert detect_format(text, format="conll") == "conll"  # explicit override wins
    with pytest.raises(DataError, match="unknown format 'xml'"):
        detect_format(text, format="xml")
    assert set(FORMATS) == {"cluener", "cmeee", "spans", "conll", "text", "cmeie", "pair"}


def test_text_reader_keeps_lines_exactly(tmp_path):
    # Blank lines are documents too (empty, predicted as nothing): output line n = input line n.
    p = _write(tmp_path / "in.txt", ["  患者发热 ", "", "   ", "咳嗽"])
    res = read_documents(p)
    assert [d.text for d in res.documents] == ["  患者发热 ", "", "   ", "咳嗽"]
    assert [d.source for d in res.documents] == [f"{p}:1", f"{p}:2", f"{p}:3", f"{p}:4"]
    assert res.report.records_read == res.report.records_kept == 4


# --- stats ----------------------------------------------------------------------------


def test_corpus_stats_known_numbers():
    E = Entity
    docs = [
        # nested: (0,5)⊃(0,2), (0,5)⊃(3,5); crossing: (3,5)x(4,7); same span: (0,2) typed twice
        # -> (0,5)⊃(0,2) counted once per distinct span pair: (0,5)⊃(0,2 dis), (0,5)⊃(0,2 bod)
        Document("糖尿病肾病变化", [E(0, 5, "dis"), E(0, 2, "dis"), E(0, 2, "bod"), E(3, 5, "bod"), E(4, 7, "sym")]),
        Document("头痛", [E(0, 2, "sym")]),
        Document("无", []),
        Document("发热咳嗽", [E(0, 2, "sym"), E(2, 4, "sym")]),  # adjacent, not overlapping
    ]
    s = corpus_stats(docs)
    assert s["records"] == 4 and s["chars"] == 7 + 2 + 1 + 4
    assert s["text_length"] == {"min": 1, "mean": 3.5, "median": 3.0, "p95": 7, "max": 7}
    assert s["entities"] == 8
    assert s["entities_per_type"] == {"sym": 4, "bod": 2, "dis": 2}
    assert s["nested"] == 3  # (0,5)⊃(0,2)dis, (0,5)⊃(0,2)bod, (0,5)⊃(3,5)
    assert s["overlapping"] == 2  # (0,5)x(4,7), (3,5)x(4,7)
    assert s["same_span"] == 1
    assert s["texts_with_overlap"] == 1 and s["texts_without_entities"] == 1
    assert s["entities_per_text"]["max"] == 5
    table = format_stats(s)
    assert "nested 3" in table and "overlapping (crossing) 2" in table
    assert table.split("\n")[0].startswith("records 4")
    assert any(line.split()[:2] == ["sym", "4"] for line in table.split("\n"))
