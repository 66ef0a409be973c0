"""What a careful user's mistakes must not cost: an output that is the input, a typo'd model
path, the wrong kind of file for evaluate, a data path that does not exist, an output_dir that
holds the user's own files. Each is refused before any work, with a message that says what to do.
Nothing here trains a model: the refusals happen before weights load."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lingshu.cli import main
from lingshu.modeling.backbone import ModelPathError, OfflineModelError, resolve_model
from lingshu.training.harness import check_output_dir, is_run_dir, save_run


def _fake_model(path: Path, task: str = "ner") -> Path:
    """A folder that reads as a lingshu model of `task` from its config.json alone (no weights:
    every command below must refuse before loading them)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "lingshu": {"task": task}}),
                                      encoding="utf-8")
    return path


def _cluener(path: Path) -> Path:
    path.write_text('{"text": "张三在北京", "label": {"name": {"张三": [[0, 1]]}}}\n', encoding="utf-8")
    return path


# --- an output that is the input ------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["predict", "evaluate"])
def test_output_that_is_the_input_is_refused(tmp_path, capsys, cmd):
    model = _fake_model(tmp_path / "m")
    data = _cluener(tmp_path / "d.json")
    before = data.read_bytes()
    assert main([cmd, str(model), str(data), "-o", str(data)]) == 2
    assert "is the input" in capsys.readouterr().err
    link = tmp_path / "link.json"
    link.symlink_to(data)  # another name for the same file
    assert main([cmd, str(model), str(data), "-o", str(link)]) == 2
    assert data.read_bytes() == before


def test_corpus_prepare_refuses_to_overwrite_its_input(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("患者出现发热咳嗽等症状，持续三天。\n", encoding="utf-8")
    before = corpus.read_bytes()
    assert main(["corpus", "prepare", str(corpus), "-o", str(corpus), "--workers", "1", "--no-progress"]) != 0
    assert "input" in capsys.readouterr().err
    assert corpus.read_bytes() == before
    from lingshu.pretrain.corpus import prepare_corpus

    with pytest.raises(ValueError, match="is the input"):
        prepare_corpus([corpus], corpus, workers=1, progress=False)
    assert corpus.read_bytes() == before


# --- inputs checked before the model loads ---------------------------------------------------


def test_missing_input_and_bad_output_format_refused_before_loading(tmp_path, capsys):
    model = _fake_model(tmp_path / "m")  # no weights: loading would fail, so reaching it fails the test
    assert main(["predict", str(model), str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    data = _cluener(tmp_path / "d.json")
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "o"), "--output-format", "xml"]) == 2
    assert "cannot be written as 'xml'" in capsys.readouterr().err
    assert main(["predict", str(model), str(tmp_path), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["evaluate", str(model), str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("task,content,layout", [
    ("ner", '{"query1": "头痛", "query2": "头疼", "label": "2"}\n', "pair"),
    ("ner", "张三在北京工作。\n李四去了上海。\n", "text"),
    ("re", '{"text": "张三在北京", "label": {"name": {"张三": [[0, 1]]}}}\n', "cluener"),
    ("pair", '{"text": "张三在北京", "label": {"name": {"张三": [[0, 1]]}}}\n', "cluener"),
])
def test_evaluate_refuses_a_file_the_task_cannot_be_scored_on(tmp_path, capsys, task, content, layout):
    model = _fake_model(tmp_path / "m", task)
    data = tmp_path / "d.json"
    data.write_text(content, encoding="utf-8")
    assert main(["evaluate", str(model), str(data)]) == 2
    err = capsys.readouterr().err
    assert f"is a {layout} file" in err and f"a {task} model is scored on" in err


# --- model paths ------------------------------------------------------------------------------


def test_model_path_errors_say_what_is_wrong(tmp_path):
    (tmp_path / "runs" / "crf-model").mkdir(parents=True)
    with pytest.raises(ModelPathError, match="no such folder.*did you mean"):
        resolve_model(str(tmp_path / "runs" / "crf-modle"))
    os.chdir(tmp_path)  # `runs/typo`: runs/ is a folder here, so this is a path, not a hub id
    try:
        with pytest.raises(ModelPathError, match="no such folder: runs/typo"):
            resolve_model("runs/typo")
    finally:
        os.chdir(Path(__file__).parent)
    with pytest.raises(ModelPathError, match="no config.json"):
        resolve_model(str(tmp_path / "runs" / "crf-model"))
    (tmp_path / "f.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ModelPathError, match="is a file"):
        resolve_model(str(tmp_path / "f.txt"))
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"model_type": "no-such-arch"}), encoding="utf-8")
    with pytest.raises(ModelPathError, match="model_type 'no-such-arch'"):
        resolve_model(str(odd))
    (odd / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelPathError, match="no model_type"):
        resolve_model(str(odd))


def test_hub_id_not_cached_fails_at_once_with_the_hf_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(OfflineModelError, match="hf download org/some-model"):
        resolve_model("org/some-model")


def test_cli_typo_model_path_is_one_line_error(tmp_path):
    data = _cluener(tmp_path / "d.json")
    r = subprocess.run([sys.executable, "-m", "lingshu.cli", "predict", "runs/does-not-exist", str(data), "-o",
                        str(tmp_path / "o.jsonl")], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "runs/does-not-exist" in r.stderr and ("no such folder" in r.stderr or "hf download" in r.stderr)


# --- data paths and the output folder of train -------------------------------------------------


def test_train_refuses_missing_data_and_a_foreign_output_dir(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def train(*args):
        return subprocess.run([sys.executable, "-m", "lingshu.cli", "train", *args], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path, env=env)

    r = train("data.train=missing.json", f"output_dir={tmp_path / 'out'}")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "data.train=missing.json" in r.stderr and "not found" in r.stderr and "current folder" in r.stderr
    r = train("data=cmeee", f"output_dir={tmp_path / 'out'}")
    assert r.returncode != 0 and "(from data=cmeee)" in r.stderr and "Traceback" not in r.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes", encoding="utf-8")
    (mine / "checkpoint-best").mkdir()
    data = _cluener(tmp_path / "d.json")
    r = train(f"data.train={data}", f"output_dir={mine}")
    assert r.returncode != 0 and "not a lingshu run" in r.stderr and "overwrite=true" in r.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["checkpoint-best", "notes.txt"]  # not even .hydra/
    r = train(f"data.train={data}", "trainer.resume=true", f"output_dir={tmp_path / 'fresh'}")
    assert r.returncode != 0 and "holds no complete checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "fresh").exists()  # refused before Hydra made the folder
    r = train("task=ner-softmax", "task.tag_decoding=Constrained", f"data.train={data}", f"output_dir={tmp_path / 'td'}")
    assert r.returncode != 0 and "choose one of argmax, constrained" in r.stderr and "Traceback" not in r.stderr


def test_output_dir_policy(tmp_path):
    check_output_dir(tmp_path / "new")  # nothing there: fine
    empty = tmp_path / "empty"
    empty.mkdir()
    check_output_dir(empty)
    user = tmp_path / "user"
    user.mkdir()
    (user / "data.csv").write_text("x", encoding="utf-8")
    with pytest.raises(SystemExit, match="data.csv"):
        check_output_dir(user)
    check_output_dir(user, overwrite=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / "lingshu_config.yaml").write_text("a: 1\n", encoding="utf-8")
    assert is_run_dir(run) and not is_run_dir(user)
    check_output_dir(run)  # an earlier run is replaced, with a warning
    hub = tmp_path / "downloaded"  # a model folder of another tool: its files have lingshu's names, not its markers
    hub.mkdir()
    for name in ("config.json", "model.safetensors"):
        (hub / name).write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"holds config\.json, model\.safetensors\)"):
        check_output_dir(hub)
    # another Trainer's output: checkpoint-N folders do not make it a lingshu run, and even with
    # overwrite=true it is refused, since training would replace or rotate those checkpoints away
    hf = tmp_path / "hf"
    (hf / "checkpoint-500").mkdir(parents=True)
    (hf / "checkpoint-500" / "trainer_state.json").write_text("{}", encoding="utf-8")
    (hf / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    assert not is_run_dir(hf)
    with pytest.raises(SystemExit, match="not a lingshu run"):
        check_output_dir(hf)
    with pytest.raises(SystemExit, match=r"checkpoint folders \(checkpoint-500\).*even with overwrite=true"):
        check_output_dir(hf, overwrite=True)


def test_save_run_removes_only_lingshus_checkpoints(tmp_path):
    """A finished run removes the Trainer's checkpoint-N folders, never a user's folder that
    merely starts with checkpoint-."""
    from omegaconf import OmegaConf

    run = tmp_path / "run"
    for name in ("checkpoint-10", "checkpoint-20", "checkpoint-best", "checkpoint-old-notes"):
        (run / name).mkdir(parents=True)
    (run / "char_vocab").mkdir()  # lingshu builds its vocabulary elsewhere: a char_vocab/ here is the user's
    (run / "char_vocab" / "vocab.txt").write_text("x", encoding="utf-8")

    class FakeTrainer:
        class state:
            log_history = []

        def is_world_process_zero(self):
            return True

        def save_model(self, d):
            (Path(d) / "model.safetensors").write_bytes(b"")

    class FakeTok:
        def save_pretrained(self, d):
            (Path(d) / "tokenizer.json").write_text("{}", encoding="utf-8")

    cfg = OmegaConf.create({"trainer": {"keep_checkpoints": False}})
    save_run(FakeTrainer(), FakeTok(), cfg, run, {"a": 1})
    left = sorted(p.name for p in run.iterdir())
    assert "checkpoint-10" not in left and "checkpoint-20" not in left
    assert {"checkpoint-best", "checkpoint-old-notes", "char_vocab"} <= set(left)


# --- interrupted writers and closed pipes ---------------------------------------------------------


def test_sigterm_removes_the_temp_file_and_stale_ones_are_cleaned(tmp_path):
    """A writer killed with SIGTERM under the lingshu command leaves no temp file; one killed with
    SIGKILL leaves one, which the next write of the same file removes."""
    import signal

    from lingshu.io import atomic_write_text

    target = tmp_path / "out.jsonl"
    code = ("import sys, time\nfrom lingshu.cli import main\n"
            "import lingshu.io as io\n"
            "def slow(argv):\n"
            "    with io.atomic_open(sys.argv[1]) as f:\n"
            "        f.write('x'); f.flush(); print('ready', flush=True); time.sleep(600)\n"
            "import lingshu.cli as cli\ncli.cmd_quickstart = lambda a: slow(a)\n"
            "sys.exit(main(['quickstart']))\n")
    for sig, leaves in ((signal.SIGTERM, False), (signal.SIGKILL, True)):
        p = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        assert len(list(tmp_path.glob(".out.jsonl.*.tmp"))) == 1
        p.send_signal(sig)
        p.wait(timeout=120)
        left = list(tmp_path.glob(".out.jsonl.*.tmp"))
        assert bool(left) == leaves and not target.exists()
    # the SIGKILLed writer is gone: its temp file is stale
    atomic_write_text(target, "done\n")
    assert target.read_text(encoding="utf-8") == "done\n" and not list(tmp_path.glob(".out.jsonl.*.tmp"))


@pytest.mark.parametrize("reader", ["head -1", "true"])  # `true` closes the pipe before anything is written
def test_validate_into_a_closed_pipe_is_quiet(shared, tmp_path, reader):
    """Quiet, and the exit status still gates: 0 for a clean file, 1 for one with a bad record."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"text": "甲", "label": {}}\n{"txet": "乙"}\n', encoding="utf-8")
    for path, status in ((shared / "cluener" / "dev.json", 0), (bad, 1)):
        cmd = f"{sys.executable} -m lingshu.cli data validate {path} | {reader}; exit ${{PIPESTATUS[0]}}"
        r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
        assert r.returncode == status and "BrokenPipe" not in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert ("records read" in r.stdout) == (reader != "true")


def test_report_table_aligns_chinese_names_by_display_width():
    from lingshu.training.metrics import display_width, format_table

    m = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    table = format_table({"per_type": {"临床表现": m, "ab": m}, "micro": m}, "per_type", "predicate")
    rows = [r for r in table.splitlines() if not r.startswith("-")]
    assert len({display_width(r) for r in rows}) == 1, table  # every row ends in the same column


def test_predict_killed_with_sigkill_resumes_to_the_same_bytes(shared, tmp_path):
    """`lingshu predict` killed mid-way (SIGKILL: no cleanup at all) leaves the output untouched and
    a journal of what it predicted; `--resume` continues from the last buffer boundary before it, and
    the result is byte for byte the uninterrupted run's. A resume with another input is refused."""
    import signal
    import time

    model = Path(__file__).parent / "fixtures" / "legacy" / "ner-crf-bert"
    texts = [json.loads(line)["text"] for line in (shared / "cluener" / "dev.json").read_text().splitlines()]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts[:1200]) + "\n", encoding="utf-8")

    def predict(out, *extra):
        return [sys.executable, "-m", "lingshu.cli", "predict", str(model), str(src), "-o", str(out),
                "--batch-size", "8", *extra]

    whole = tmp_path / "whole.jsonl"
    assert subprocess.run(predict(whole), capture_output=True, timeout=900).returncode == 0
    out = tmp_path / "out.jsonl"
    journal = tmp_path / ".out.jsonl.partial.jsonl"
    p = subprocess.Popen(predict(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while p.poll() is None and time.monotonic() < deadline:  # wait until some records are journaled
        if journal.exists() and journal.read_bytes().count(b"\n") > 260:  # into the second buffer of 256
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=120)
    assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    kept = journal.read_bytes().count(b"\n") - 1
    assert 0 < kept < 1200 and not out.exists()
    with open(journal, "ab") as f:  # a record cut off mid-line, as a kill inside write() leaves it
        f.write(b'{"text": "cut')
    other = tmp_path / "other.txt"
    other.write_text("别的输入\n", encoding="utf-8")
    r = subprocess.run([*predict(out, "--resume")[:4], str(model), str(other), "-o", str(out), "--resume"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 2 and "another run" in r.stderr and not out.exists()
    r = subprocess.run(predict(out, "--resume"), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert f"resuming: {kept - kept % 256:,} records" in r.stderr  # from the last buffer boundary
    assert out.read_bytes() == whole.read_bytes()
    assert not journal.exists()


def test_predict_writes_unreadable_records_to_a_rejects_file(shared, tmp_path, capsys):
    """Bad records never stop a prediction run: each goes to OUTPUT.rejects.jsonl with its line,
    its errors and its raw text; a later clean run removes the stale rejects file."""
    model = Path(__file__).parent / "fixtures" / "legacy" / "ner-crf-bert"
    good = (shared / "cluener" / "dev.json").read_text(encoding="utf-8").splitlines()[:6]
    bad_field = good[2].replace('"text"', '"txet"', 1)
    data = tmp_path / "in.json"
    data.write_bytes(("\n".join([*good[:3], bad_field, *good[3:], '{"text": "cut off']) + "\n").encode("utf-8")
                     + b"\xff\xfe not utf-8\n")
    out = tmp_path / "out.json"
    assert main(["predict", str(model), str(data), "-o", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 6  # every good record predicted
    rejects = [json.loads(x) for x in (tmp_path / "out.json.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["errors"][0]["kind"]) for r in rejects] == [(4, "missing_text"), (8, "bad_json"),
                                                                       (9, "bad_encoding")]
    assert rejects[0]["record"] == bad_field and rejects[1]["record"] == '{"text": "cut off'
    assert rejects[0]["file"] == str(data)
    assert "3 unreadable record(s) written to" in capsys.readouterr().err
    data.write_text("\n".join(good) + "\n", encoding="utf-8")
    assert main(["predict", str(model), str(data), "-o", str(out)]) == 0
    assert not (tmp_path / "out.json.rejects.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "out.json"]  # no temp file left
    assert main(["predict", str(model), str(data), "-o", str(out), "--rejects", str(data)]) == 2


# --- records the output layout cannot hold, odd model folders, unlabelled files ----------------

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


def test_records_the_output_layout_cannot_hold_are_rejected_up_front(tmp_path, capsys):
    """A text with a line break, or a blank line, cannot be CoNLL: each goes to the rejects file
    (kind unwritable, its line) and the rest is written; the run does not fail at its end. A lone
    surrogate in an id (read from its escape) is journaled and written back as the escape."""
    model = str(LEGACY / "ner-crf-bert")
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "患者发热\\n头痛", "entities": []}\n{"text": "咳嗽", "entities": []}\n'
                    '{"text": "张三在北京", "entities": [], "id": "\\udcff"}\n', encoding="utf-8")
    out = tmp_path / "out.conll"
    assert main(["predict", model, str(data), "-o", str(out), "--output-format", "conll"]) == 0
    err = capsys.readouterr().err
    assert "1 record(s) the conll layout cannot hold" in err and "Traceback" not in err
    sentences = [s for s in out.read_text(encoding="utf-8").split("\n\n") if s.strip()]
    assert ["".join(ln.split(" ")[0] for ln in s.splitlines()) for s in sentences] == ["咳嗽", "张三在北京"]
    rejects = [json.loads(x) for x in (tmp_path / "out.conll.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["errors"][0]["kind"], r["record"]) for r in rejects] == [(1, "unwritable", "患者发热\n头痛")]
    assert not list(tmp_path.glob(".out.conll*partial*"))
    text = tmp_path / "notes.txt"  # a blank line is an empty document: fine as text, not as conll
    text.write_text("患者发热\n\n咳嗽\n", encoding="utf-8")
    assert main(["predict", model, str(text), "-o", str(tmp_path / "notes.conll"), "--output-format", "conll"]) == 0
    assert "1 record(s) the conll layout cannot hold" in capsys.readouterr().err
    rejects = (tmp_path / "notes.conll.rejects.jsonl").read_text(encoding="utf-8")
    assert json.loads(rejects)["line"] == 2 and "empty" in rejects
    spans = tmp_path / "out.jsonl"  # spans hold any text; the surrogate id comes back as its escape
    assert main(["predict", model, str(data), "-o", str(spans)]) == 0
    lines = spans.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["id"] == "\udcff" and "\\udcff" in lines[2]


def test_a_folder_that_is_not_a_lingshu_model_and_a_bad_format_are_one_line_errors(tmp_path, capsys):
    data = _cluener(tmp_path / "d.json")
    enc = tmp_path / "encoder"
    enc.mkdir()
    (enc / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    odd = _fake_model(tmp_path / "odd", "nosuch")
    for cmd in (["predict", str(enc), str(data), "-o", str(tmp_path / "o.jsonl")], ["evaluate", str(enc), str(data)]):
        assert main(cmd) == 2
        assert "not a lingshu model" in capsys.readouterr().err
    assert main(["evaluate", str(odd), str(data)]) == 2
    assert "unknown task 'nosuch'" in capsys.readouterr().err
    model = _fake_model(tmp_path / "m")
    for cmd in (["predict", str(model), str(data), "-o", str(tmp_path / "o.jsonl"), "--format", "foo"],
                ["evaluate", str(model), str(data), "--format", "foo"]):
        assert main(cmd) == 2
        assert "unknown format 'foo'" in capsys.readouterr().err


def test_the_default_rejects_file_never_replaces_the_input(tmp_path, capsys):
    model = _fake_model(tmp_path / "m")
    data = tmp_path / "p.rejects.jsonl"
    data.write_text('{"text": "张三"}\n', encoding="utf-8")
    before = data.read_bytes()
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "p")]) == 2
    assert "the rejects file" in capsys.readouterr().err and data.read_bytes() == before


def test_evaluate_refuses_an_unlabelled_file(shared, tmp_path, capsys):
    test = tmp_path / "test.json"  # CLUENER's test file: id and text, no labels
    test.write_text("".join((shared / "cluener" / "test.json").read_text(encoding="utf-8").splitlines(True)[:20]),
                    encoding="utf-8")
    assert main(["evaluate", str(LEGACY / "ner-crf-bert"), str(test)]) == 1
    assert "hold no gold entities" in capsys.readouterr().err
    pairs = tmp_path / "qqr.json"
    pairs.write_text('[{"id": "1", "query1": "头痛", "query2": "头疼", "label": ""}]\n', encoding="utf-8")
    assert main(["evaluate", str(LEGACY / "pair-bert"), str(pairs)]) == 1
    assert "hold no gold labels" in capsys.readouterr().err


def test_validate_fails_on_an_error_outside_the_records_and_stats_reports_skips(tmp_path, capsys):
    two = tmp_path / "two.json"
    two.write_text('[{"text": "甲", "entities": []}]\n[{"text": "乙", "entities": []}]\n', encoding="utf-8")
    assert main(["data", "validate", str(two)]) == 1
    assert "FAILED: the file has errors outside its records" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"text": "甲", "label": {}}\n{"txet": "乙"}\n', encoding="utf-8")
    assert main(["data", "stats", str(bad)]) == 0
    cap = capsys.readouterr()
    assert "1 skipped" in cap.err and "missing_text" in cap.err


def test_a_pair_model_refuses_a_file_without_pairs_before_loading(tmp_path, capsys):
    model = _fake_model(tmp_path / "m", "pair")  # no weights: reaching the load fails the test
    text = tmp_path / "notes.txt"
    text.write_text("糖尿病吃什么\n", encoding="utf-8")
    for data in (text, _cluener(tmp_path / "d.json")):
        assert main(["predict", str(model), str(data), "-o", str(tmp_path / "o.jsonl")]) == 2
        err = capsys.readouterr().err
        assert "a pair model predicts from pair files" in err and "Traceback" not in err
    assert not list(tmp_path.glob(".o.jsonl*"))
