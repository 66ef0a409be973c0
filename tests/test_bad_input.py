"""Bad input, one crafted file per case: the exact good records are kept, each bad one is reported
with file:line (and field), and nothing raises a traceback. The property-based and fuzzing
side of the same promise is in test_fuzz_readers.py."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lingshu.data import DataError, detect_format, read_documents, write_documents
from lingshu.data.cmeie import _gap, place
from lingshu.schema import Document, Entity

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _cmeee(i: int) -> dict:
    return {"text": f"患者{i}出现发热", "entities": [
        {"start_idx": 0, "end_idx": 1, "type": "dis", "entity": "患者"},
        {"start_idx": 5, "end_idx": 6, "type": "sym", "entity": "发热"}]}


def _pretty_list(records: list[str]) -> str:
    return "[\n" + ",\n".join(records) + "\n]\n"


def _indent(rec: dict) -> str:
    return "\n".join("  " + ln for ln in json.dumps(rec, ensure_ascii=False, indent=2).split("\n"))


def _texts(res) -> list[str]:
    return [d.text for d in res.documents]


def _errors(res) -> list:
    return [p for p in res.report.problems if p.severity == "error"]


# --- 1. good records are never lost after a broken one ---------------------------------------


TRUNCATED = '  {\n    "text": "坏记录",\n    "entities": [\n      {\n        "text": "坏", "start_idx": 0,'


@pytest.mark.parametrize("broken", [
    TRUNCATED,  # cut off inside its entities; its inner object even has a "text" key
    '  {\n    "text": "坏记录"\n    "entities": []\n  }',  # a missing comma
    '  {\n    "text": "坏记录,\n    "entities": []\n  }',  # a missing quote
    '  {"text": "坏记录", "entities": [}',  # a wrong closer
])
def test_cmeee_list_keeps_every_good_record_after_a_broken_one(tmp_path, broken):
    good = [_indent(_cmeee(i)) for i in range(3)]
    p = tmp_path / "d.json"
    p.write_text(_pretty_list([broken] + good), encoding="utf-8")
    res = read_documents(p)
    assert res.report.format == "cmeee"
    assert _texts(res) == [f"患者{i}出现发热" for i in range(3)]
    assert [len(d.entities) for d in res.documents] == [2, 2, 2]
    assert res.report.records_skipped == 1 and res.report.records_read == 4
    assert _errors(res)[0].line == 2  # where the broken record starts


def test_one_line_lists_recover_too(tmp_path):
    recs = [json.dumps(_cmeee(i), ensure_ascii=False) for i in range(3)]
    p = tmp_path / "d.json"
    p.write_text('[{"text": "坏", "entities": [{"entity": "x", "start_idx": 0},' + ",".join(recs) + "]", encoding="utf-8")
    res = read_documents(p, format="cmeee")
    assert _texts(res)[-3:] == [f"患者{i}出现发热" for i in range(3)]
    assert res.report.records_read == res.report.records_kept + res.report.records_skipped


def test_a_record_wrapped_in_a_list_is_an_error_not_a_record(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps([[_cmeee(0)], _cmeee(1)], ensure_ascii=False), encoding="utf-8")
    res = read_documents(p, format="cmeee")
    assert _texts(res) == ["患者1出现发热"]
    assert _errors(res)[0].kind == "bad_record"


def test_kuake_list_keeps_good_records_after_a_broken_one(tmp_path):
    recs = [{"id": f"s{i}", "query1": f"问题{i}", "query2": f"问{i}", "label": "1"} for i in range(3)]
    broken = '  {\n    "id": "bad",\n    "query1": "坏"\n    "query2": "坏",\n    "label": "0"\n  }'
    p = tmp_path / "q.json"
    p.write_text(_pretty_list([broken] + [_indent(r) for r in recs]), encoding="utf-8")
    res = read_documents(p)
    assert res.report.format == "pair"
    assert [d.id for d in res.documents] == ["s0", "s1", "s2"]


def test_a_missing_comma_between_records_loses_nothing(tmp_path):
    p = tmp_path / "d.json"
    a, b = (json.dumps(_cmeee(i), ensure_ascii=False) for i in range(2))
    p.write_text(f"[\n  {a}\n  {b}\n]\n", encoding="utf-8")
    res = read_documents(p)
    assert len(res) == 2 and _errors(res)[0].line == 3 and "missing ','" in _errors(res)[0].message


def test_data_after_the_list_is_reported(tmp_path):
    p = tmp_path / "d.json"
    one = json.dumps([_cmeee(0)], ensure_ascii=False)
    p.write_text(one + "\n" + one + "\n", encoding="utf-8")
    res = read_documents(p)
    assert len(res) == 1
    assert _errors(res)[0].line == 2 and "after the list" in _errors(res)[0].message
    with pytest.raises(DataError, match=r"d.json:2: .*after the list"):
        read_documents(p, strict=True)


def test_a_duplicate_key_is_an_error(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"text": "发热", "label": {}, "label": {"sym": {"发热": [[0, 1]]}}}\n{"text": "头痛", "label": {}}\n',
                 encoding="utf-8")
    res = read_documents(p)
    assert _texts(res) == ["头痛"]
    assert (_errors(res)[0].kind, _errors(res)[0].field, _errors(res)[0].line) == ("duplicate_key", "label", 1)


# --- 2. streams are read once ------------------------------------------------------------------


def test_a_pipe_loses_nothing():
    dev = SHARED / "cluener" / "dev.json"
    code = ("import sys; from lingshu.data import read_documents; r = read_documents('/dev/stdin'); "
            "print(len(r), r.report.format)")
    with open(dev, "rb") as f:
        out = subprocess.run([sys.executable, "-c", code], stdin=f, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(read_documents(dev))), "cluener"]
    assert dev.stat().st_size > 1 << 16  # larger than the detection head


# --- 3. detection --------------------------------------------------------------------------------


def test_plain_text_that_starts_with_a_bracket_is_text(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("[医嘱] 患者发热\n{主诉} 咳嗽\n", encoding="utf-8")
    assert detect_format(p) == "text"
    assert _texts(read_documents(p)) == ["[医嘱] 患者发热", "{主诉} 咳嗽"]


@pytest.mark.parametrize("first", ['{"注意": 1} 患者发热三天', "[]患者发热", '[{"a": 1}] 患者发热'])
def test_text_after_a_complete_json_value_is_text(tmp_path, first):
    """A plain text whose first line opens with a whole JSON value and goes on with text is not
    a JSON file; a broken first record, or more JSON after a list, still is."""
    p = tmp_path / "notes.txt"
    p.write_text(first + "\n患者咳嗽两周\n", encoding="utf-8")
    assert detect_format(p) == "text"
    assert _texts(read_documents(p)) == [first, "患者咳嗽两周"]
    q = tmp_path / "broken.json"
    q.write_text('{"text": "发热", "label": {\n{"text": "头痛", "label": {}}\n', encoding="utf-8")
    assert detect_format(q) == "cluener"
    for junk in (' [{"text": "乙", "entities": []}]', "]", ";", " ]"):  # more JSON or debris: a JSON file
        r = tmp_path / "two.json"
        r.write_text('[{"text": "甲", "entities": []}]' + junk + "\n", encoding="utf-8")
        assert detect_format(r) == "cmeee", junk
        assert read_documents(r).report.errors, junk


def test_unicode_line_separators_are_characters_not_line_breaks(tmp_path):
    text = "患者\u2028发热\u2029咳嗽\x85头痛"
    docs = [Document(text, [Entity(3, 5, "sym", "发热")], relations=[]),
            Document("血压正常", [Entity(0, 2, "ind", "血压")])]
    for fmt in ("spans", "cluener", "cmeee"):
        p = tmp_path / f"d.{fmt}"
        write_documents(docs, p, fmt)
        raw = p.read_text(encoding="utf-8")
        assert not any(c in raw for c in "\u2028\u2029\x85"), fmt  # escaped by the writer
        assert detect_format(p) == fmt
        res = read_documents(p)
        assert _texts(res) == [text, "血压正常"] and [len(d.entities) for d in res] == [1, 1], fmt
    # Raw separators (another tool's file) in the first records do not derail detection either.
    p = tmp_path / "raw.jsonl"
    p.write_text(json.dumps({"text": text, "entities": [{"start": 3, "end": 5, "type": "sym"}]},
                            ensure_ascii=False) + "\n", encoding="utf-8")
    assert "\u2028" in p.read_text(encoding="utf-8")
    assert detect_format(p) == "spans" and len(read_documents(p).documents[0].entities) == 1


def test_a_text_file_ending_lines_in_tag_like_words_is_not_conll(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("患者 出现 发热 O\n今天 好转 B\n", encoding="utf-8")
    assert detect_format(p) == "text"
    q = tmp_path / "chars"
    q.write_text("患 B-dis\n者 I-dis\n\n发 O\n", encoding="utf-8")
    assert detect_format(q) == "conll"


# --- 4. records in another layout, CLUENER labels, scores -------------------------------------


def test_a_record_in_another_layout_is_reported_not_stripped(tmp_path):
    p = tmp_path / "c.json"
    lines = [{"text": "发热", "label": {"sym": {"发热": [[0, 1]]}}},
             {"text": "头痛", "entities": [{"start": 0, "end": 2, "type": "sym"}]},
             {"text": "咳嗽"}]
    p.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    res = read_documents(p)
    assert res.report.format == "cluener"
    assert _texts(res) == ["发热", "咳嗽"]  # a record without annotation is still fine (a test file)
    assert (_errors(res)[0].kind, _errors(res)[0].line) == ("other_layout", 2)


def test_empty_own_annotation_beside_another_layouts_is_reported(tmp_path):
    """A record whose own annotation key is empty while another layout's key holds annotations
    would lose them silently: a spans line with "entities": [] and a spo_list, a CLUENER line
    with "label": {} and entities."""
    p = tmp_path / "s.jsonl"
    p.write_text('{"text": "甲乙", "entities": [{"start": 0, "end": 1, "type": "x"}]}\n'
                 '{"text": "李四在上海", "entities": [], "spo_list": [{"predicate": "p", "subject": "李四", '
                 '"object": "上海"}]}\n{"text": "丙", "entities": [], "label": "positive"}\n', encoding="utf-8")
    res = read_documents(p)
    assert _texts(res) == ["甲乙", "丙"]  # a string label is not CLUENER's annotation
    assert [(e.kind, e.line, e.field) for e in _errors(res)] == [("other_layout", 2, "spo_list")]
    q = tmp_path / "c.json"
    q.write_text('{"text": "甲乙", "label": {"x": {"甲": [[0, 0]]}}}\n'
                 '{"text": "患者发热", "label": {}, "entities": [{"start": 0, "end": 2, "type": "x"}]}\n'
                 '{"text": "丙", "label": {}, "entities": []}\n', encoding="utf-8")
    res = read_documents(q)
    assert _texts(res) == ["甲乙", "丙"]
    assert [(e.kind, e.line, e.field) for e in _errors(res)] == [("other_layout", 2, "entities")]


@pytest.mark.parametrize("label", [[], 0, False, ""])
def test_a_cluener_label_that_is_not_a_dict_is_an_error(tmp_path, label):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"text": "发热", "label": label}) + "\n", encoding="utf-8")
    res = read_documents(p, format="cluener")
    assert len(res) == 0 and _errors(res)[0].field == "label"


def test_a_nan_score_and_an_integer_pair_label_are_checked(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"text": "发热", "entities": [{"start": 0, "end": 2, "type": "sym", "score": NaN}]}\n', encoding="utf-8")
    assert _errors(read_documents(p))[0].field == "entities[0].score"
    q = tmp_path / "q.json"
    q.write_text(json.dumps([{"id": "a", "query1": "甲", "query2": "乙", "label": 7},
                             {"id": "b", "query1": "甲", "query2": "乙", "label": 1}]), encoding="utf-8")
    res = read_documents(q)
    assert [d.id for d in res] == ["b"] and _errors(res)[0].kind == "unknown_label"


# --- 5. encodings and other crashes -----------------------------------------------------------


def test_invalid_utf8_skips_only_its_record(tmp_path):
    p = tmp_path / "c.json"
    p.write_bytes(b'{"text": "\xe5\x8f\x91\xff", "label": {}}\n{"text": "ok", "label": {}}\n')
    res = read_documents(p)
    assert _texts(res) == ["ok"] and (_errors(res)[0].kind, _errors(res)[0].line) == ("bad_encoding", 1)
    assert "column 12" in _errors(res)[0].message
    q = tmp_path / "d.json"
    recs = [_indent(_cmeee(i)) for i in range(3)]
    q.write_bytes(_pretty_list(recs).encode("utf-8").replace("患者1".encode(), b"\xc3\x28"))
    res = read_documents(q)
    assert _texts(res) == ["患者0出现发热", "患者2出现发热"] and _errors(res)[0].kind == "bad_encoding"
    t = tmp_path / "t.txt"
    t.write_bytes(b"\xe5\x8f\x91\xe7\x83\xad\n\xff\n\xe5\xa4\xb4\n")
    res = read_documents(t)
    assert _texts(res) == ["发热", "头"] and _errors(res)[0].line == 2
    c = tmp_path / "c.conll"
    c.write_bytes(b"\xe5\x8f\x91 O\n\xff O\n\n\xe5\xa4\xb4 S-sym\n")
    res = read_documents(c)
    assert _texts(res) == ["头"] and _errors(res)[0].line == 2
    with pytest.raises(DataError, match="t.txt:2: invalid UTF-8"):
        read_documents(t, strict=True)


def test_deep_nesting_and_huge_numbers_are_reported(tmp_path):
    p = tmp_path / "c.json"
    deep = "[" * 100_000 + "]" * 100_000
    p.write_text(f'{{"text": "ab", "label": {deep}}}\n'
                 f'{{"text": "ab", "label": {{"x": {{"a": [[{"9" * 5000}, 0]]}}}}}}\n'
                 '{"text": "ok", "label": {}}\n', encoding="utf-8")
    res = read_documents(p)
    assert _texts(res) == ["ok"] and [e.line for e in _errors(res)] == [1, 2]
    assert "nested too deeply" in _errors(res)[0].message
    assert "a number of more than 4,300 digits" in _errors(res)[1].message  # not Python's sys.* advice
    q = tmp_path / "d.json"
    q.write_text("[\n  " + deep + ",\n  " + json.dumps(_cmeee(0), ensure_ascii=False) + "\n]", encoding="utf-8")
    res = read_documents(q, format="cmeee")
    assert _texts(res) == ["患者0出现发热"]
    assert detect_format(q) == "cmeee"  # the too-deep first record is longer than the detection head
    assert [e.line for e in _errors(read_documents(q))] == [2]


def test_lone_surrogates_are_refused_and_printable(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"text": "a\\ud800b", "label": {}}\n{"text": "ok", "label": {"x\\udc00": {"o": [[0, 0]]}}}\n'
                 '{"text": "ok", "label": {"x": {"\\udc01": [[0, 0]]}}}\n', encoding="utf-8")
    res = read_documents(p)
    assert len(res) == 0 and [e.kind for e in _errors(res)] == ["bad_unicode", "bad_unicode", "text_mismatch"]
    printed = res.report.summary()
    printed.encode("utf-8")  # no lone surrogate reaches the terminal
    assert "\\udc00" in printed and "\\udc01" in printed


def test_a_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_documents(tmp_path)


# --- cost -------------------------------------------------------------------------------------


def test_closest_pair_placement_equals_the_brute_force_policy():
    rng = random.Random(0)
    for _ in range(400):
        text = "".join(rng.choice("ab") for _ in range(rng.randint(1, 30)))
        s = "".join(rng.choice("ab") for _ in range(rng.randint(1, 3)))
        o = "".join(rng.choice("ab") for _ in range(rng.randint(1, 3)))
        got = place(text, s, o)
        S = [i for i in range(len(text)) if text.startswith(s, i)]
        O = [i for i in range(len(text)) if text.startswith(o, i)]
        if not S or not O:
            continue
        best = min(((a == b and len(s) == len(o)), _gap(a, len(s), b, len(o)), min(a, b), a, b) for a in S for b in O)
        assert got[:2] == (best[3], best[4]), (text, s, o)


def test_repeated_characters_and_stacked_entities_stay_linear(tmp_path):
    # A 30 KB record of one repeated character, and 3,000 entities on one span: both were
    # quadratic (60 s; 4.5 million warnings). Counted, not timed.
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps({"text": "痛" * 30_000, "spo_list": [{"predicate": "p", "subject": "痛", "subject_type": "s",
                             "object": {"@value": "痛痛"}, "object_type": {"@value": "o"}}]},
                            ensure_ascii=False) + "\n", encoding="utf-8")
    res = read_documents(p)
    assert len(res) == 1 and res.report.mentions_ambiguous == 2
    q = tmp_path / "s.jsonl"
    ents = [{"start": 0, "end": 2 + i % 5, "type": f"t{i}"} for i in range(3000)]
    q.write_text(json.dumps({"text": "患者发热咳嗽头痛", "entities": ents}, ensure_ascii=False) + "\n", encoding="utf-8")
    res = read_documents(q)
    assert res.report.warnings["overlap"] == 2999
    assert len(res.report.problems) <= 1000


def test_the_python_api_refuses_a_lone_surrogate_with_a_clear_error():
    import lingshu

    legacy = Path(__file__).resolve().parent / "fixtures" / "legacy"
    nlp = lingshu.load(str(legacy / "ner-crf-bert"), device="cpu")
    with pytest.raises(ValueError, match="lone surrogate U\\+D800 at character 2"):
        nlp("患者\ud800发热")
    with pytest.raises(ValueError, match="lone surrogate"):
        list(nlp.pipe(["头痛", "a\udcff"]))
    assert nlp("患者发热").text == "患者发热"
