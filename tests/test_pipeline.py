"""`nlp.pipe`: streamed predictions in input order, read lazily in bounded chunks, the same as
`nlp.predict` on the whole list; and `lingshu predict`, which streams file -> pipe -> writer.

Uses the tiny model directories of tests/fixtures/legacy (every task and decoder)."""

import json
from pathlib import Path

import pytest

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy"
TEXTS = ["患者三天前出现发热、咳嗽。", "糖尿病", "给予阿莫西林口服，每日三次，症状缓解后出院。", "头痛",
         "血压 150/95 mmHg，心率 88 次/分。", "无", "术后第二天切口愈合良好，无红肿渗出。"] * 9


def _key(d):
    return (d.text, d.text_pair, [(e.start, e.end, e.type) for e in d.ents],
            sorted(r.typed_key for r in d.relations), d.label)


def _inputs(name):
    if name.startswith("pair"):
        return [(a, b) for a, b in zip(TEXTS, TEXTS[1:] + TEXTS[:1])]
    return TEXTS


@pytest.mark.parametrize("name", ["ner-crf-bert", "ner-globalpointer-bert", "re-bert", "re-gplinker-bert", "pair-bert"])
def test_pipe_streams_in_input_order_and_equals_predict(name):
    import lingshu

    nlp = lingshu.load(str(LEGACY / name), device="cpu", batch_size=4)
    inputs = _inputs(name)
    whole = nlp(inputs)
    pulled = []

    def source():
        for x in inputs:
            pulled.append(x)
            yield x

    stream = nlp.pipe(source(), batch_size=3, buffer_size=10)
    first = next(stream)
    assert len(pulled) == 10  # one buffer read before the first result, not the whole input
    got = [first, *stream]
    assert [_key(d) for d in got] == [_key(d) for d in whole]
    assert nlp.batch_size == 4  # pipe's batch_size applies to the stream only


def test_pipe_refuses_what_a_task_cannot_read():
    import lingshu

    with pytest.raises(TypeError, match="text1, text2"):
        list(lingshu.load(str(LEGACY / "pair-bert"), device="cpu").pipe(["只有一句"]))
    with pytest.raises(TypeError, match="expected a text"):
        list(lingshu.load(str(LEGACY / "ner-crf-bert"), device="cpu").pipe([3]))


def test_predict_streams_a_file_and_keeps_input_order(tmp_path, capsys):
    import lingshu
    from lingshu.cli import main

    src = tmp_path / "in.txt"
    texts = [f"{i} {t}" for i, t in enumerate(TEXTS * 10)]
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    model = str(LEGACY / "ner-globalpointer-bert")
    assert main(["predict", model, str(src), "-o", str(out), "--device", "cpu", "--batch-size", "8"]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == texts
    want = lingshu.load(model, device="cpu")(texts)
    assert [[(e["start"], e["end"], e["type"]) for e in r["entities"]] for r in rows] == \
        [[(e.start, e.end, e.type) for e in d.ents] for d in want]
    n = sum(len(r["entities"]) for r in rows)
    assert f"wrote {len(texts)} documents, {n:,} entities" in capsys.readouterr().out


def test_decoding_thresholds_per_call_leave_the_model_as_it_was():
    import lingshu

    gp = lingshu.load(str(LEGACY / "ner-globalpointer-bert"), device="cpu")
    n = sum(len(d.entities) for d in gp(TEXTS))
    assert n > 0
    assert sum(len(d.entities) for d in gp(TEXTS, thresholds={"span_threshold": 1e9})) == 0
    assert sum(len(d.entities) for d in gp(TEXTS, thresholds={"span_threshold": -2.0})) > n
    assert sum(len(d.entities) for d in gp.pipe(TEXTS, thresholds={"span_threshold": 1e9})) == 0
    assert sum(len(d.entities) for d in gp(TEXTS)) == n  # the stored threshold again
    with pytest.raises(ValueError, match="takes: span_threshold"):
        gp.pipe(iter(TEXTS), thresholds={"pattern_threshold": 0.1}).__next__()

    re_ = lingshu.load(str(LEGACY / "re-bert"), device="cpu")
    assert sum(len(d.entities) for d in re_(TEXTS)) > 0 and sum(len(d.relations) for d in re_(TEXTS)) == 0
    assert sum(len(d.relations) for d in re_(TEXTS, thresholds={"mention_threshold": -5.0, "pattern_threshold": 0.0,
                                                                  "type_threshold": 0.0})) > 0
    none = re_(TEXTS, thresholds={"mention_threshold": 1e9})
    assert not any(d.entities or d.relations for d in none)
    with pytest.raises(ValueError, match="takes: none"):
        lingshu.load(str(LEGACY / "ner-crf-bert"), device="cpu")(TEXTS[:1], thresholds={"span_threshold": 0.0})


def test_softmax_tag_decoding_per_call(shared):
    """A softmax model decodes per unit by default (its config's tag_decoding), or, asked per
    call, along the best well-formed BIOS path (tests/test_decoding.py checks the path itself);
    the barely trained fixture's argmax paths are often ill-formed, so the two differ."""
    import lingshu

    sm = lingshu.load(str(LEGACY / "ner-softmax-bert"), device="cpu")
    texts = [json.loads(x)["text"] for x in (shared / "cluener" / "dev.json").read_text(encoding="utf-8").splitlines()[:64]]
    plain = sm(texts)
    assert plain == sm(texts, thresholds={"tag_decoding": "argmax"})
    constrained = sm(texts, thresholds={"tag_decoding": "constrained"})
    assert [d.text for d in constrained] == texts and plain != constrained
    with pytest.raises(ValueError, match="choose one of argmax, constrained"):
        sm(texts[:1], thresholds={"tag_decoding": "beam"})
    with pytest.raises(ValueError, match="expected a str"):
        sm(texts[:1], thresholds={"tag_decoding": 1})
    with pytest.raises(ValueError, match="takes: none"):  # a CRF decodes with its own transitions
        lingshu.load(str(LEGACY / "ner-crf-bert"), device="cpu")(texts[:1], thresholds={"tag_decoding": "constrained"})


def test_decode_options_on_the_command_line(shared, tmp_path, capsys):
    from lingshu.cli import main

    dev = shared / "cluener" / "dev.json"
    sub = tmp_path / "dev.json"
    sub.write_text("".join(dev.read_text(encoding="utf-8").splitlines(True)[:64]), encoding="utf-8")
    sm = str(LEGACY / "ner-softmax-bert")
    reports = {}
    for how in ("argmax", "constrained"):
        out = tmp_path / f"{how}.json"
        assert main(["evaluate", sm, str(sub), "-o", str(out), "--decode", f"tag_decoding={how}"]) == 0
        reports[how] = json.loads(out.read_text(encoding="utf-8"))
    assert reports["constrained"]["decode"] == {"tag_decoding": "constrained"}
    assert reports["argmax"]["micro"] != reports["constrained"]["micro"]
    gp = str(LEGACY / "ner-globalpointer-bert")
    out = tmp_path / "none.jsonl"
    assert main(["predict", gp, str(sub), "-o", str(out), "--decode", "span_threshold=1e9"]) == 0
    assert "wrote 64 documents, 0 entities" in capsys.readouterr().out
    assert main(["predict", gp, str(sub), "-o", str(out), "--decode", "tag_decoding=constrained"]) == 2
    assert "takes: span_threshold" in capsys.readouterr().err
    assert main(["evaluate", sm, str(sub), "--decode", "constrained"]) == 2
    assert "give KEY=VALUE" in capsys.readouterr().err
    for bad, says in (("tag_decoding=beam", "choose one of argmax"), ("span_threshold=abc", "expected a finite number"),
                      ("span_threshold=nan", "expected a finite number")):
        model = sm if bad.startswith("tag") else gp
        assert main(["predict", model, str(sub), "-o", str(out), "--decode", bad]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, bad
    assert not list(tmp_path.glob(".none.jsonl*"))


def test_backend_seam_numpy_in_numpy_out():
    import numpy as np

    import lingshu

    with pytest.raises(ValueError, match="unknown backend 'onnx-nope'"):
        lingshu.load(str(LEGACY / "ner-crf-bert"), device="cpu", backend="onnx-nope")
    nlp = lingshu.load(str(LEGACY / "re-bert"), device="cpu")
    feats = nlp.preprocess([lingshu.Document(t) for t in TEXTS[:5]])[0]
    idx, inputs = next(nlp.batches(feats))
    assert all(isinstance(v, np.ndarray) for v in inputs.values())
    first = nlp.backend.run("mentions", inputs)
    assert set(first) == {"units", "span_logits"} and first["span_logits"].dtype == np.float32
    b, n = inputs["unit_index"].shape
    assert first["span_logits"].shape == (b, n, n) and first["units"].shape[:2] == (b, n)
    with pytest.raises(ValueError, match="no stage 'logits'"):
        nlp.backend.run("logits", inputs)


def test_cli_refuses_a_directory_where_a_file_belongs_before_any_work(tmp_path, capsys):
    from lingshu.cli import main

    model = str(LEGACY / "ner-crf-bert")
    assert main(["predict", model, str(tmp_path), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "is a directory; give a file" in capsys.readouterr().err
    src = tmp_path / "in.txt"
    src.write_text("发热\n", encoding="utf-8")
    assert main(["predict", model, str(src), "-o", str(tmp_path)]) == 2
    assert "-o" in capsys.readouterr().err
    assert main(["data", "validate", str(tmp_path)]) == 2
    assert main(["evaluate", model, str(tmp_path)]) == 2
