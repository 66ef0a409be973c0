"""The Ray Data engine (`lingshu predict --engine ray`, lingshu.inference.ray_engine): shards
joined by `merge` are the bytes of one write, and a run on a local Ray instance with 2 CPU
workers gives the single-process output record for record."""

import itertools
import json
import sys
from types import SimpleNamespace

import pytest

from lingshu.data import read_documents, write_documents
from lingshu.inference import ray_engine
from lingshu.inference.ray_engine import RayEngineError


def _head(path, n):
    with open(path, encoding="utf-8") as f:
        return list(itertools.islice(f, n))


def _docs_per_layout(shared, tmp_path):
    """(layout, documents) for every layout predictions are written in; NER texts include one
    starting with U+FEFF in the middle (a line layout writes a BOM before such a first text)."""
    src = tmp_path / "ner.json"
    lines = _head(shared / "cluener" / "dev.json", 30)
    rec = json.loads(lines[10])
    rec["text"] = "\ufeff" + rec["text"]
    rec["label"] = {t: {e: [[s + 1, x + 1] for s, x in spans] for e, spans in ents.items()}
                    for t, ents in rec.get("label", {}).items()}
    lines[10] = json.dumps(rec, ensure_ascii=False) + "\n"
    src.write_text("".join(lines), encoding="utf-8")
    ner = read_documents(src).documents
    assert ner[10].text.startswith("\ufeff")
    cmeie = tmp_path / "re.jsonl"
    cmeie.write_text("".join(_head(shared / "cmeie" / "CMeIE_dev.jsonl", 30)), encoding="utf-8")
    kuake = read_documents(shared / "kuake-qqr" / "KUAKE-QQR_dev.json").documents[:30]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"text1": d.text, "text2": d.text_pair, "label": d.label}, ensure_ascii=False)
                             + "\n" for d in kuake), encoding="utf-8")
    return [("spans", ner), ("cluener", ner), ("cmeee", ner), ("conll", ner), ("text", ner),
            ("cmeie", read_documents(cmeie).documents), ("pair", kuake), ("pair", read_documents(pairs).documents)]


def test_merged_shards_are_the_bytes_of_one_write(shared, tmp_path):
    for k, (layout, docs) in enumerate(_docs_per_layout(shared, tmp_path)):
        whole = tmp_path / f"whole{k}"
        write_documents(docs, whole, layout)
        shards = []
        for i, (a, b) in enumerate([(0, 7), (7, 10), (10, 12), (12, len(docs))]):  # the BOM text opens a shard
            shards.append(tmp_path / f"s{k}-{i}")
            write_documents(docs[a:b], shards[-1], layout)
        merged = tmp_path / f"merged{k}"
        ray_engine.concat_shards(shards, layout, merged)
        assert merged.read_bytes() == whole.read_bytes(), layout
    empty = tmp_path / "empty.json"
    ray_engine.concat_shards([], "cmeee", empty)
    assert json.loads(empty.read_text(encoding="utf-8")) == []


def test_inputs_are_a_file_a_folder_or_a_glob(tmp_path):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for name in ("b.txt", "a.txt", ".hidden", "sub/c.txt"):
        (d / name).write_text("x\n", encoding="utf-8")
    assert ray_engine.resolve_inputs(d) == [str(d / "a.txt"), str(d / "b.txt")]
    assert ray_engine.resolve_inputs(str(d / "**" / "*.txt")) == [str(d / "a.txt"), str(d / "b.txt"),
                                                                   str(d / "sub" / "c.txt")]
    assert ray_engine.resolve_inputs([d / "b.txt", str(d / "*.txt")]) == [str(d / "b.txt"), str(d / "a.txt")]
    with pytest.raises(RayEngineError, match="no input files match"):
        ray_engine.resolve_inputs(str(d / "*.json"))
    with pytest.raises(RayEngineError, match="no such file or folder"):
        ray_engine.resolve_inputs(str(d / "missing.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RayEngineError, match="holds no input files"):
        ray_engine.resolve_inputs(tmp_path / "empty")


def test_an_output_folder_that_is_not_a_ray_run_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(RayEngineError, match="not empty and not the output of a ray run"):
        ray_engine._prepare_out_dir(out, [])
    assert (out / "notes.txt").exists()
    (out / "notes.txt").unlink()
    (out / "manifest.json").write_text('{"something": "else"}', encoding="utf-8")
    with pytest.raises(RayEngineError, match="not the manifest of a lingshu ray run"):
        ray_engine._prepare_out_dir(out, [])
    # an earlier ray run (here an interrupted one: shards, no manifest) is cleared
    (out / "manifest.json").unlink()
    (out / "shard-00000-0000000000.jsonl").write_text("{}\n", encoding="utf-8")
    ray_engine._prepare_out_dir(out, [])
    assert list(out.iterdir()) == []
    src = out / "in.txt"
    with pytest.raises(RayEngineError, match="inside the output folder"):
        ray_engine._prepare_out_dir(out, [str(src)])
    with pytest.raises(RayEngineError, match="holds no manifest.json"):
        ray_engine.merge(out, tmp_path / "merged.jsonl")


def test_without_ray_the_error_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(RayEngineError, match=r"pip install 'lingshu\[ray\]'"):
        ray_engine.run("model", str(tmp_path), tmp_path / "out")
    a = SimpleNamespace(model="model", input=str(tmp_path), output=str(tmp_path / "out"), format=None,
                        output_format=None, batch_size=64, backend=None, device="cpu", workers=2)
    assert ray_engine.cli_main(a) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: the ray engine needs Ray Data: pip install 'lingshu[ray]'"


@pytest.mark.slow
def test_ray_run_on_two_workers_equals_single_process_predict(crf_model, shared, tmp_path, capsys):
    pytest.importorskip("ray")
    from lingshu.cli import main

    run_dir, _ = crf_model
    lines = _head(shared / "cluener" / "dev.json", 300)
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.json").write_text("".join(lines[:150]), encoding="utf-8")  # CLUENER
    (d / "b.json").write_text("".join(lines[150:250]), encoding="utf-8")
    (d / "c.txt").write_text("".join(json.loads(ln)["text"] + "\n" for ln in lines[250:]), encoding="utf-8")  # text

    out = tmp_path / "out"
    assert main(["predict", str(run_dir), str(d), "-o", str(out), "--engine", "ray", "--workers", "2",
                 "--chunk-size", "64", "--output-format", "spans", "--device", "cpu", "--batch-size", "32"]) == 0
    assert "wrote 300 documents" in capsys.readouterr().out
    m = ray_engine.read_manifest(out)
    assert m["documents"] == 300 and m["layout"] == "spans" and m["task"] == "ner"
    assert [(i["format"], i["documents"]) for i in m["inputs"]] == [("cluener", 150), ("cluener", 100), ("text", 50)]
    assert len(m["shards"]) >= 6  # blocks of 64: at least 3 + 2 + 1 shards, each of one input
    assert all((out / s["path"]).is_file() for s in m["shards"])
    merged = tmp_path / "merged.jsonl"
    assert main(["merge", str(out), str(merged)]) == 0

    # the single-process engine, file by file (JSON lines: its outputs concatenated are one file)
    single = []
    for name in ("a.json", "b.json", "c.txt"):
        o = tmp_path / f"{name}.spans.jsonl"
        assert main(["predict", str(run_dir), str(d / name), "-o", str(o), "--output-format", "spans",
                     "--device", "cpu", "--batch-size", "32"]) == 0
        single += o.read_text(encoding="utf-8").splitlines(keepends=True)
    got = merged.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(got) == len(single) == 300
    for i, (g, s) in enumerate(zip(got, single)):
        assert json.loads(g) == json.loads(s), f"record {i}"
    assert "".join(got) == "".join(single)
    assert sum(len(json.loads(s)["entities"]) for s in single) == m["predictions"] > 0


def test_the_read_step_streams_blocks_then_rejects_and_counts(tmp_path):
    """`_read_inputs` (the Ray read step, called here without Ray): blocks of at most
    `chunk_size` records indexed per file, each unreadable record, then the file's counts."""
    from lingshu.inference import journal

    src = tmp_path / "in.json"
    recs = [{"text": f"患者{i}发热", "label": {}} for i in range(5)]
    lines = [json.dumps(r, ensure_ascii=False) for r in recs]
    lines.insert(2, '{"text": 3}')  # no text string: skipped, rejected
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batch = {"file": [7], "path": [str(src)], "format": ["cluener"]}
    blocks = list(ray_engine._read_inputs(batch, chunk_size=2, layout="spans"))
    rows = [(int(f), int(i), str(d)) for b in blocks for f, i, d in zip(b["file"], b["index"], b["doc"])]
    assert max(len(b["index"]) for b in blocks) <= 2
    assert {f for f, _, _ in rows} == {7}
    docs = [(i, journal.loads(d)) for _, i, d in rows if i >= 0]
    assert [i for i, _ in docs] == [0, 1, 2, 3, 4]
    assert [d.text for _, d in docs] == [r["text"] for r in recs]
    rejects = [json.loads(d) for _, i, d in rows if i == ray_engine._REJECT]
    assert [(r["line"], r["record"]) for r in rejects] == [(3, '{"text": 3}')]
    assert rows[-1][1] == ray_engine._REPORT
    assert json.loads(rows[-1][2]) == {"records_read": 6, "records_skipped": 1, "documents": 5, "format": "cluener"}


def test_the_read_step_rejects_what_the_output_layout_cannot_hold(tmp_path):
    """As `lingshu predict` does: a text with a line break cannot be CoNLL; it goes to the
    rejects (kind unwritable) and the records after it keep their order."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "患者发热", "entities": []}\n{"text": "咳嗽\\n头痛", "entities": []}\n'
                   '{"text": "胸痛", "entities": []}\n', encoding="utf-8")
    blocks = list(ray_engine._read_inputs({"file": [0], "path": [str(src)], "format": ["spans"]}, chunk_size=8,
                                          layout="conll"))
    rows = [(int(i), str(d)) for b in blocks for i, d in zip(b["index"], b["doc"])]
    assert [i for i, _ in rows if i >= 0] == [0, 1]
    rejects = [json.loads(d) for i, d in rows if i == ray_engine._REJECT]
    assert [(r["line"], r["errors"][0]["kind"]) for r in rejects] == [(2, "unwritable")]


def test_a_pair_model_refuses_inputs_without_pairs_before_ray_starts(tmp_path):
    pytest.importorskip("ray")
    model = tmp_path / "pair"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert", "lingshu": {"task": "pair"}}', encoding="utf-8")
    src = tmp_path / "notes.txt"
    src.write_text("糖尿病吃什么\n", encoding="utf-8")
    with pytest.raises(RayEngineError, match="a pair model predicts from pair files"):
        ray_engine.run(str(model), str(src), tmp_path / "out")
