"""ONNX export: every task's stages as graphs, the same arrays and the same Documents as torch
on real dev texts, int8 close to fp32, and an exported folder that loads and predicts like the
model folder it came from."""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lingshu.data import read_documents  # noqa: E402
from lingshu.inference.onnx import OnnxBackend, export_onnx  # noqa: E402
from lingshu.inference.pipeline import load_pipeline  # noqa: E402
from lingshu.schema import Document  # noqa: E402
from conftest import REPO, torch_and_int8_reports  # noqa: E402

LEGACY = REPO / "tests" / "fixtures" / "legacy"
# each fixture against the real dev set of its task (GlobalPointer on CMeEE: nested spans)
CASES = {
    "ner-crf-bert": ("cluener/dev.json", "cluener"),
    "ner-softmax-bert": ("cluener/dev.json", "cluener"),
    "ner-globalpointer-bert": ("cmeee/CMeEE_dev.json", "cmeee"),
    "ner-crf-modernbert": ("cluener/dev.json", "cluener"),
    "re-bert": ("cmeie/CMeIE_dev.jsonl", "cmeie"),
    "re-gplinker-bert": ("cmeie/CMeIE_dev.jsonl", "cmeie"),
    "pair-bert": ("kuake-qqr/KUAKE-QQR_dev.json", "pair"),
}
N_TEXTS = 32


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every legacy fixture exported once (fp32): {name: folder}."""
    root = tmp_path_factory.mktemp("onnx")
    for name in CASES:
        export_onnx(LEGACY / name, root / name)
    return {name: root / name for name in CASES}


def _docs(shared, name):
    rel, fmt = CASES[name]
    docs = read_documents(shared / rel, format=fmt).documents[:N_TEXTS]
    return [Document(d.text, text_pair=d.text_pair) for d in docs]


def _stage_outputs(nlp, docs, backends):
    """Every stage's arrays for every batch of `docs`, from each backend, on the same inputs
    (the relation stage of the three-head model on the mentions torch chose)."""
    feats = nlp.preprocess(docs)[0]
    got = [[] for _ in backends]
    for _, inputs in nlp.batches(feats):
        stages = list(nlp.model.stages)
        firsts = [b.run(stages[0], inputs) for b in backends]
        for g, f in zip(got, firsts):
            g.append(f)
        if stages == ["mentions", "relations"]:
            _, _, ment, pairs = nlp.model.choose_mentions(firsts[0]["span_logits"])
            second = {"units": firsts[0]["units"], "mentions": ment, "pairs": pairs}
            for g, b in zip(got, backends):
                g.append(b.run("relations", second))
    return got


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_arrays_match_torch_within_1e4(shared, exports, name):
    torch_nlp = load_pipeline(LEGACY / name, device="cpu", precision="fp32")
    onnx_backend = OnnxBackend(exports[name])
    want, got = _stage_outputs(torch_nlp, _docs(shared, name), [torch_nlp.backend, onnx_backend])
    assert len(want) == len(got) > 0
    for w, g in zip(want, got):
        assert w.keys() == g.keys()
        for k in w:
            assert w[k].shape == g[k].shape, k
            np.testing.assert_allclose(g[k], w[k], rtol=0, atol=1e-4, err_msg=f"{name}: {k}")


def _view(d: Document):
    """What a prediction says: spans, types, triples, label (scores compared apart)."""
    return (d.text, sorted((e.start, e.end, e.type) for e in d.entities), sorted(r.key for r in d.relations),
            d.label)


def _scores(d: Document) -> list[float]:
    ents = [e.score for e in sorted(d.entities, key=lambda e: (e.start, e.end, e.type)) if e.score is not None]
    return ents + [d.label_scores[k] for k in sorted(d.label_scores or {})]


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_documents_equal_torch(shared, exports, name):
    docs = _docs(shared, name)
    torch_docs = load_pipeline(LEGACY / name, device="cpu", precision="fp32").predict(docs)
    onnx_nlp = load_pipeline(exports[name])  # picks the onnx backend by itself
    assert onnx_nlp.backend.name == "onnx"
    onnx_docs = onnx_nlp.predict(docs)
    assert [_view(d) for d in onnx_docs] == [_view(d) for d in torch_docs]
    for a, b in zip(onnx_docs, torch_docs):
        assert _scores(a) == pytest.approx(_scores(b), abs=1e-3)
    found = sum(len(d.entities) + len(d.relations) + (d.label is not None) for d in torch_docs)
    assert found > 0  # the comparison is about predictions, not about two empty lists


def test_exported_folder_is_a_model_folder(exports):
    out = exports["ner-crf-bert"]
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "tokenizer.json", "onnx"} <= names and "model.safetensors" not in names
    manifest = json.loads((out / "onnx" / "manifest.json").read_text())
    assert manifest["stages"]["logits"]["outputs"] == ["logits"] and manifest["check_max_abs_diff"] < 1e-4
    assert sorted(manifest["arrays"]["crf"]) == ["end", "start", "transitions"]
    card = (out / "README.md").read_text()
    assert "## This folder: an ONNX export" in card and "`logits`: input_ids" in card
    with pytest.raises(ValueError, match="ONNX export"):
        load_pipeline(out, backend="torch")
    with pytest.raises(ValueError, match="not an ONNX export"):
        load_pipeline(LEGACY / "ner-crf-bert", backend="onnx")
    one = load_pipeline(out, threads=1)  # onnxruntime's intra-op threads, per session
    assert all(s.get_session_options().intra_op_num_threads == 1 for s in one.backend.sessions.values())
    assert one("患者出现发热").to_dict() == load_pipeline(out)("患者出现发热").to_dict()


def test_int8_export_predicts_close_to_fp32(shared, tmp_path):
    """int8 weights: the same entities on most texts (the fixture is tiny and barely trained,
    so this checks the quantized graph runs the same computation, not leaderboard F1)."""
    name = "ner-crf-bert"
    export_onnx(LEGACY / name, tmp_path / "int8", int8=True)
    docs = _docs(shared, name)
    fp32 = load_pipeline(LEGACY / name, device="cpu", precision="fp32").predict(docs)
    q = load_pipeline(tmp_path / "int8").predict(docs)
    same = sum(_view(a)[1] == _view(b)[1] for a, b in zip(fp32, q))
    assert same >= 0.8 * len(docs), same
    assert (tmp_path / "int8" / "onnx" / "logits.onnx").stat().st_size < \
        0.5 * (LEGACY / name / "model.safetensors").stat().st_size


def test_cli_export_then_predict(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("患者出现发热咳嗽\n血压偏高\n", encoding="utf-8")
    out = tmp_path / "exp"

    def lingshu(*args):
        return subprocess.run([sys.executable, "-m", "lingshu.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=900)

    r = lingshu("export", "onnx", LEGACY / "ner-softmax-bert", out)
    assert r.returncode == 0, r.stderr
    assert "exported" in r.stdout
    for model, dest in ((out, tmp_path / "a.jsonl"), (LEGACY / "ner-softmax-bert", tmp_path / "b.jsonl")):
        r = lingshu("predict", model, src, "-o", dest)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    r = lingshu("export", "onnx", out, tmp_path / "again")  # an export is not a model to export
    assert r.returncode != 0 and "already an ONNX export" in r.stderr


def test_int8_f1_of_a_trained_model_within_half_a_point(crf_model, cluener_subset, tmp_path):
    """The issue's bar for int8: a trained tiny CRF model (the shared 60-step fixture), scored on
    the 200-text dev subset, loses at most 0.5 F1 points to its torch original."""
    scores = {k: r["micro"] for k, r in torch_and_int8_reports(crf_model[0], cluener_subset[1], tmp_path).items()}
    assert scores["torch"]["predicted"] > 0
    assert abs(scores["int8"]["f1"] - scores["torch"]["f1"]) <= 0.005, scores


def test_an_interrupted_int8_run_resumes_to_the_same_bytes(shared, tmp_path, monkeypatch, capsys):
    """An int8 export's answers depend on the batch (onnxruntime picks activation scales per
    batch), so a resume must cut the batches the uninterrupted run cut: it restarts at the pipe's
    buffer boundary (256 records here), not at the last journaled record."""
    from lingshu.cli import main
    from lingshu.inference import journal

    export_onnx(LEGACY / "re-bert", tmp_path / "int8", int8=True)
    lines = (shared / "cmeie" / "CMeIE_dev.jsonl").read_text(encoding="utf-8").splitlines()[:400]
    src = tmp_path / "in.txt"
    src.write_text("".join(json.loads(x)["text"] + "\n" for x in lines), encoding="utf-8")
    cmd = ["predict", str(tmp_path / "int8"), str(src), "--batch-size", "4", "-o"]
    assert main([*cmd, str(tmp_path / "whole.jsonl")]) == 0

    append = journal.append

    def killed_after_262(path, docs):  # a kill 6 records into the second buffer of 256
        for i, doc in enumerate(append(path, docs)):
            if i == 261:  # the 262nd record is journaled
                raise KeyboardInterrupt
            yield doc

    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(journal, "append", killed_after_262)
    with pytest.raises(KeyboardInterrupt):
        main([*cmd, str(out)])
    monkeypatch.setattr(journal, "append", append)
    jpath = journal.journal_path(out)
    left = jpath.read_bytes()
    assert left.count(b"\n") == 263  # the header and 262 records (resumed after them, 11 of these
    # 400 records came out otherwise: measured when this test was written)
    capsys.readouterr()
    assert main([*cmd, str(out), "--resume"]) == 0
    assert "resuming: 256 records" in capsys.readouterr().err
    assert out.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    # another batch size would cut other batches: that resume is refused
    jpath.write_bytes(left)
    other = journal.header(str(src), str(tmp_path / "int8"), "cmeie", 8)
    with pytest.raises(ValueError, match="batch_size differ"):
        journal.open_for_resume(jpath, other)
