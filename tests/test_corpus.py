"""Corpus preparation (lingshu.pretrain.corpus): splitting, cleaning, filters, dedupe, streaming."""

import argparse
import inspect
import json
import threading
import time
import tracemalloc

import pytest

from lingshu.pretrain.corpus import (
    PrepareSummary,
    _ordered_map,
    add_cli,
    clean_sentence,
    iter_chunks,
    prepare_corpus,
    split_sentences,
)

# ---------------------------------------------------------------------------------------------
# Sentence splitting and cleaning


@pytest.mark.parametrize("text, expected", [
    ("他说：“按时服药。”然后复查。", ["他说：“按时服药。”", "然后复查。"]),  # closing quote stays
    ("真的吗？！好的……再见", ["真的吗？！", "好的……", "再见"]),  # terminator runs stay together
    ("标题没有句号\n摘要第一句；第二句", ["标题没有句号", "摘要第一句；", "第二句"]),  # line breaks
    ("（见图1。）后文」「再来！】", ["（见图1。）", "后文」「再来！】"]),
    ("结束。 ” 下一句", ["结束。 ”", "下一句"]),  # a space before the closer does not orphan it
    ("Fever! Cough? yes; 0.5g口服", ["Fever!", "Cough?", "yes;", "0.5g口服"]),  # half-width; "." is no end
    ("。开头就是句号", ["。", "开头就是句号"]),
    ("  \n\t ", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("raw, expected", [
    ("太 好 了！！！！", "太好了！"),
    ("好。。。。", "好。"),
    ("嗯……", "嗯……"),  # the normal ellipsis is kept
    ("嗯…………", "嗯……"),  # a longer one becomes the normal one, not a single "…"
    ("注意——别忘了", "注意——别忘了"),  # two identical marks are not a run
    ("～～～哈哈---分隔", "～哈哈-分隔"),
    ("HbA1c 7.5%\u3000偏高\u200b", "HbA1c7.5%偏高"),  # all whitespace, full-width and zero-width too
    ("aaa好", "aaa好"),  # letters are not symbols
    ("hello world!!!", None),
    ("   ", None),
    ("12345。", None),
])
def test_clean_sentence(raw, expected):
    assert clean_sentence(raw) == expected


# ---------------------------------------------------------------------------------------------
# A small corpus with every kind of bad line; counts worked out by hand in the comments.

TEXT_LINES = [
    "患者男性，五十岁，因反复咳嗽三天入院。他说：“我最近总是头痛。”医生建议做头颅CT检查！！！！",  # 3 kept
    "",  # empty
    "   \t  ",  # empty (whitespace only)
    "Hello world, no Chinese here; 12345!",  # 2 no_chinese
    "短句。好的。",  # 2 too_short
    "这" * 130 + "。",  # 1 too_long (131 chars)
    "患者男性，五十岁，因反复咳嗽三天入院。",  # 1 duplicate within the file
    "晚 上 睡 不 着 觉 该 怎 么 办 呢 ？？？？",  # 1 kept, cleaned
    "他沉默了很久很久才开口……然后说：好吧。",  # 1 kept (with ……), 1 too_short
    "复查结果。。。。未见明显异常，建议定期随访观察",  # 1 too_short (复查结果。), 1 kept
    "  前后有空格的这一句话也应保留。  ",  # 1 kept
]
JSONL_LINES = [
    json.dumps({"title": "糖尿病患者的血糖管理研究",
                "abstract": "目的：探讨糖尿病患者的血糖管理方法。方法：回顾性分析了一百例患者的资料。"},
               ensure_ascii=False),  # 3 kept: the title is its own sentence
    json.dumps({"title": "只有标题没有摘要的记录"}, ensure_ascii=False),  # bad: missing abstract
    '{"title": "坏的JSON", ',  # bad: invalid JSON
    "",  # empty
    json.dumps({"title": "重复句子测试的标题文字", "abstract": "患者男性，五十岁，因反复咳嗽三天入院。"},
               ensure_ascii=False),  # 1 kept, 1 duplicate across files
    "[1, 2]",  # bad: not an object
    json.dumps({"title": 123, "abstract": "数字标题的记录也不能用。"}, ensure_ascii=False),  # bad: not a string
]
TSV_LINES = [
    "id\tquestion\tanswer",  # header (column names given)
    "1\t孩子发烧三十九度该怎么办\t建议先物理降温，如果持续高烧请及时就医。",  # 2 kept
    "2\t只有两列的数据",  # bad: too few columns
    "3\t孩子发烧三十九度该怎么办\tok",  # 1 duplicate, 1 no_chinese
]
EXPECTED = [
    "患者男性，五十岁，因反复咳嗽三天入院。",
    "他说：“我最近总是头痛。”",
    "医生建议做头颅CT检查！",
    "晚上睡不着觉该怎么办呢？",
    "他沉默了很久很久才开口……",
    "未见明显异常，建议定期随访观察",
    "前后有空格的这一句话也应保留。",
    "糖尿病患者的血糖管理研究",
    "目的：探讨糖尿病患者的血糖管理方法。",
    "方法：回顾性分析了一百例患者的资料。",
    "重复句子测试的标题文字",
    "孩子发烧三十九度该怎么办",
    "建议先物理降温，如果持续高烧请及时就医。",
]


@pytest.fixture
def inputs(tmp_path):
    files = []
    for name, lines in (("a.txt", TEXT_LINES), ("b.jsonl", JSONL_LINES), ("c.tsv", TSV_LINES)):
        p = tmp_path / name
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(p)
    return files


def _run(inputs, out, **kw):
    kw.setdefault("workers", 1)
    return prepare_corpus(inputs, out, fields=["title", "abstract"], columns=["question", "answer"],
                          progress=False, **kw)


def test_prepare_exact_output_and_counts(inputs, tmp_path):
    out = tmp_path / "out" / "corpus.txt"
    s = _run(inputs, out)
    assert out.read_text(encoding="utf-8").splitlines() == EXPECTED
    assert isinstance(s, PrepareSummary)
    assert (s.lines_in, s.empty_lines, s.bad_records) == (21, 3, 5)  # the TSV header is not a record
    assert s.sentences_found == 24 and s.sentences_out == 13
    assert s.dropped == {"no_chinese": 3, "too_short": 4, "too_long": 1, "duplicate": 3}
    assert s.sentences_found == s.sentences_out + sum(s.dropped.values())
    assert s.chars_out == sum(len(x) for x in EXPECTED)
    assert {k: v for k, v in s.length_hist.items() if v} == {"10-15": 9, "16-23": 4}
    _, b, c = (str(p) for p in inputs)
    assert s.messages[1].startswith(f"{b}:3: invalid JSON (")  # the json module words the rest
    assert s.messages[:1] + s.messages[2:] == [
        f"{b}:2: missing field 'abstract'",
        f"{b}:6: expected a JSON object, got list",
        f"{b}:7: field 'title' is int, not a string",
        f"{c}:3: has 2 column(s), column 2 needed",
    ]
    table = s.format()
    for needle in ("lines in", "dropped duplicate", "sentences out", "10-15", "16-23", f"{b}:2: missing field"):
        assert needle in table
    assert "13" in table.split("sentences out")[1].splitlines()[0]


def test_length_limits_are_configurable(inputs, tmp_path):
    s = _run(inputs, tmp_path / "o.txt", min_chars=5, max_chars=12)
    kept = (tmp_path / "o.txt").read_text(encoding="utf-8").splitlines()
    assert kept and all(5 <= len(x) <= 12 for x in kept)
    assert "好的。" not in kept and "复查结果。" in kept and "然后说：好吧。" in kept
    assert s.dropped["too_long"] > 1 and s.sentences_found == s.sentences_out + sum(s.dropped.values())


def test_workers_do_not_change_the_output(inputs, tmp_path):
    # Tiny chunks so that the chunks of one file really are spread over both workers.
    big = tmp_path / "big.txt"
    big.write_text("".join(f"第{i % 700}号病人的检查结果已经出来了。复诊{i}次。\n" for i in range(3000)), encoding="utf-8")
    files = [*inputs, big]
    one = _run(files, tmp_path / "w1.txt", workers=1, chunk_lines=7)
    two = _run(files, tmp_path / "w2.txt", workers=2, chunk_lines=7)
    assert (tmp_path / "w1.txt").read_bytes() == (tmp_path / "w2.txt").read_bytes()
    one.seconds = two.seconds = 0.0
    one.output = two.output = ""
    assert one == two
    assert one.sentences_out == 13 + 700  # 复诊{i}次。 is too short; 700 distinct patients


def test_reader_is_a_generator_of_bounded_chunks(tmp_path):
    p = tmp_path / "long.txt"
    p.write_text("".join(f"第{i}行的内容。\n" for i in range(2500)), encoding="utf-8")
    it = iter_chunks(p, 1000)
    assert inspect.isgenerator(it)
    first = next(it)  # only the first chunk has been read
    assert len(first.lines) == 1000 and first.first_line == 1
    rest = list(it)
    assert [c.first_line for c in rest] == [1001, 2001] and len(rest[-1].lines) == 500
    assert first.nbytes + sum(c.nbytes for c in rest) == p.stat().st_size
    # A header row is skipped but still counted in bytes (progress bar reaches 100%).
    chunks = list(iter_chunks(p, 1000, start_line=2))
    assert chunks[0].first_line == 2 and chunks[0].lines[0].decode().startswith("第1行")
    assert sum(c.nbytes for c in chunks) == p.stat().st_size


def test_pool_reads_ahead_only_a_few_chunks():
    # Pool.imap alone would pull the whole input at once; the window keeps it to `ahead` (+1 held
    # by the feeder while it waits for a slot).
    pulled = 0
    lock = threading.Lock()

    def items():
        nonlocal pulled
        for i in range(60):
            with lock:
                pulled += 1
            yield i

    worst = 0
    for consumed, r in enumerate(_ordered_map(abs, items(), workers=2, ahead=3), 1):
        time.sleep(0.002)
        with lock:
            worst = max(worst, pulled - consumed)
    assert consumed == 60 and worst <= 4


def test_memory_does_not_grow_with_the_input(tmp_path):
    # Same content per line, few distinct sentences, 4x the lines: the traced peak must stay about
    # the same (a chunk's worth) and far below the input size; any stage that held the file, or
    # a pool that read ahead without bound, would scale with it.
    line = "".join(f"这是第{k}句用于测试内存占用的中文句子。" for k in range(20))

    def peak_for(n_lines):
        p = tmp_path / f"in{n_lines}.txt"
        with open(p, "w", encoding="utf-8") as f:
            f.writelines(line + f"第{i % 50}号记录。\n" for i in range(n_lines))
        tracemalloc.start()
        try:
            s = prepare_corpus([p], tmp_path / "o.txt", workers=1, progress=False, chunk_lines=20)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert s.lines_in == n_lines and s.sentences_out == 20
        return peak, p.stat().st_size

    small, _ = peak_for(500)
    big, size = peak_for(2000)
    assert size > 2_000_000
    assert big < 1.3 * small + 65536, (small, big)
    assert big < size / 4, (big, size)


def test_missing_input_names_the_file_and_writes_nothing(inputs, tmp_path):
    out = tmp_path / "keep.txt"
    out.write_text("old\n", encoding="utf-8")
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        _run([*inputs, missing], out)
    assert out.read_text(encoding="utf-8") == "old\n"  # not truncated


def test_bad_options_are_clear(inputs, tmp_path):
    arr = tmp_path / "array.json"
    arr.write_text('[{"text": "这是一个JSON数组而不是JSON行。"}]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="JSON array"):
        prepare_corpus([arr], tmp_path / "o.txt", progress=False, workers=1)
    with pytest.raises(ValueError, match="no column 'answr'"):
        prepare_corpus([inputs[2]], tmp_path / "o.txt", columns=["question", "answr"], progress=False, workers=1)
    with pytest.raises(ValueError, match="min_chars"):
        prepare_corpus([inputs[0]], tmp_path / "o.txt", min_chars=20, max_chars=10, progress=False)
    with pytest.raises(ValueError, match="format"):
        prepare_corpus([inputs[0]], tmp_path / "o.txt", fmt="csv", progress=False)


def test_format_override_and_default_text_field(tmp_path):
    # A .txt holding JSON lines, read as jsonl with the default field "text".
    p = tmp_path / "records.txt"
    p.write_text('{"text": "默认字段是text的这条记录会被保留。"}\n{"body": "没有text字段的这一条记录"}\n',
                 encoding="utf-8")
    s = prepare_corpus([p], tmp_path / "o.txt", fmt="jsonl", workers=1, progress=False)
    assert (tmp_path / "o.txt").read_text(encoding="utf-8") == "默认字段是text的这条记录会被保留。\n"
    assert s.bad_records == 1 and "missing field 'text'" in s.messages[0]


def test_cli_prepare(inputs, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="lingshu")
    add_cli(parser.add_subparsers(dest="cmd"))
    out = tmp_path / "cli.txt"
    args = parser.parse_args(["corpus", "prepare", *map(str, inputs), "-o", str(out), "--fields", "title,abstract",
                              "--columns", "question,answer", "--workers", "2", "--no-progress"])
    assert args.func(args) == 0
    assert out.read_text(encoding="utf-8").splitlines() == EXPECTED
    printed = capsys.readouterr().out
    assert "sentences out" in printed and "dropped duplicate" in printed

    # Column indices (0-based) on a TSV without a header, and a tighter length window.
    tsv = tmp_path / "noheader.tsv"
    tsv.write_text("x\t第一列的中文句子内容\t第二列的中文句子内容更长一些\n", encoding="utf-8")
    args = parser.parse_args(["corpus", "prepare", str(tsv), "-o", str(out), "--columns", "2",
                              "--min-chars", "5", "--max-chars", "20", "--workers", "1", "--no-progress"])
    assert args.func(args) == 0
    assert out.read_text(encoding="utf-8") == "第二列的中文句子内容更长一些\n"

    args = parser.parse_args(["corpus", "prepare", str(tmp_path / "missing.txt"), "-o", str(out), "--no-progress"])
    assert args.func(args) == 1
    assert "missing.txt" in capsys.readouterr().err


def test_real_corpus_slice(shared, tmp_path):
    src = shared / "corpus" / "medical_qa_dialogue.txt"
    with open(src, encoding="utf-8") as f:
        head = [next(f) for _ in range(2000)]
    p = tmp_path / "slice.txt"
    p.write_text("".join(head), encoding="utf-8")
    s1 = prepare_corpus([p], tmp_path / "o1.txt", workers=1, progress=False)
    s2 = prepare_corpus([p], tmp_path / "o2.txt", workers=2, progress=False)
    out = (tmp_path / "o1.txt").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "o2.txt").read_text(encoding="utf-8").splitlines() == out
    assert s1.lines_in == 2000 and s1.sentences_out == len(out) == s2.sentences_out > 1000
    assert s1.sentences_found == s1.sentences_out + sum(s1.dropped.values())
    assert len(set(out)) == len(out)
    assert all(10 <= len(x) <= 128 and not any(c.isspace() for c in x) for x in out)
    assert all(clean_sentence(x) == x for x in out)  # cleaning is idempotent on its output
    assert s1.dropped["duplicate"] > 0 and s1.dropped["too_short"] > 0
