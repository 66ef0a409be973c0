"""Integration: tiny from-scratch models learn CLUENER (loss falls, dev F1 > 0), and the model
directory they leave behind is complete."""

import json

import pytest
from conftest import train_run


def losses(run_dir):
    recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in recs if "loss" in r]


def check_run(run_dir, report):
    ls = losses(run_dir)
    assert len(ls) >= 3
    # loss falls: the head starts at the label prior (trainer.init_priors), so the first loss is
    # already the prior's; what the model learns beyond it is the fall
    assert ls[-1] < 0.75 * ls[0], ls
    assert report["micro"]["f1"] > 0.0
    for f in ("config.json", "model.safetensors", "tokenizer.json", "lingshu_config.yaml",
              "train_summary.json", "loss.png", "dev_f1.png"):
        assert (run_dir / f).exists(), f
    assert not list(run_dir.glob("checkpoint-*"))  # cleaned after success by default
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["lingshu"]["task"] == "ner" and len(cfg["lingshu"]["labels"]) == 10
    card = (run_dir / "README.md").read_text()  # the model card: what it is, how made, how good, how used
    assert "| entity types | 10: address, book," in card and "built from scratch" in card
    assert "micro  " in card and f"{report['micro']['f1']:.4f}" in card and "lingshu.load(" in card


def test_tiny_bert_crf(crf_model):
    run_dir, report = crf_model
    check_run(run_dir, report)
    assert json.loads((run_dir / "config.json").read_text())["lingshu"]["decoder"] == "crf"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ner-softmax", "ner-globalpointer"])
def test_tiny_modernbert(task, cluener_subset, tmp_path):
    report = train_run(tmp_path, "tiny-modernbert", task, *cluener_subset)
    check_run(tmp_path, report)
    cfg = json.loads((tmp_path / "config.json").read_text())
    # the architecture is ModernBERT's, as configured: alternating local/global attention, no biases
    assert cfg["model_type"] == "modernbert"
    assert cfg["local_attention"] == 128 and cfg["mlp_bias"] is False
    assert cfg["layer_types"][:3] == ["full_attention", "sliding_attention", "sliding_attention"]
    assert cfg["pad_token_id"] == 0 and cfg["cls_token_id"] == 2 and cfg["sep_token_id"] == 3


@pytest.mark.slow
def test_resume_continues_from_checkpoint(cluener_subset, tmp_path):
    common = ["model.config.num_hidden_layers=1", "trainer.eval_every=2", "trainer.keep_checkpoints=true",
              "trainer.logging_steps=1", "trainer.early_stopping_patience=0"]
    train_run(tmp_path, "tiny-bert", "ner-softmax", *cluener_subset, steps=4, extra=common)
    assert (tmp_path / "checkpoint-4").exists()
    train_run(tmp_path, "tiny-bert", "ner-softmax", *cluener_subset, steps=6, extra=common + ["trainer.resume=true"])
    assert json.loads((tmp_path / "train_summary.json").read_text())["global_step"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    # the second run logged steps 5 and 6 only: it did not start again from step 1
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_hydra_sweep_writes_one_run_per_value(cluener_subset, tmp_path):
    import subprocess
    import sys

    train, dev = cluener_subset
    r = subprocess.run([sys.executable, "-m", "lingshu.cli", "train", "-m", "task=ner-softmax",
                        "trainer.learning_rate=1e-3,2e-3", "model.config.num_hidden_layers=1",
                        f"data.train={train}", f"data.dev={dev}", "trainer.max_steps=2",
                        "trainer.progress=false", f"output_dir={tmp_path}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = sorted(p.parent.name for p in tmp_path.glob("*/config.json"))
    assert len(runs) == 2 and all("learning_rate" in name for name in runs), runs
    for name in runs:
        cfg = (tmp_path / name / "lingshu_config.yaml").read_text()
        assert ("0.001" in cfg) != ("0.002" in cfg)


@pytest.mark.slow
def test_dev_scoring_with_narrower_labels_is_what_evaluate_scores(cluener_subset, tmp_path):
    """task.labels narrower than the data: training's dev scoring keeps every dev record, as
    `lingshu evaluate` does (entities of the other types are misses), so the model is selected
    on the figure evaluate reports later. Before, dev records holding another type vanished from
    model selection only."""
    from lingshu.cli import main
    from lingshu.data import read_documents

    out = tmp_path / "run"
    report = train_run(out, "tiny-bert", "ner-crf", *cluener_subset, steps=20,
                       extra=["task.labels=[name,address]", "model.config.num_hidden_layers=1"])
    gold = read_documents(cluener_subset[1]).documents
    assert report["micro"]["support"] == sum(len(d.entities) for d in gold)  # every record, every entity
    rep = tmp_path / "eval.json"
    assert main(["evaluate", str(out), str(cluener_subset[1]), "-o", str(rep), "--device", "cpu"]) == 0
    ev = json.loads(rep.read_text(encoding="utf-8"))
    assert ev["micro"] == pytest.approx(report["micro"])
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    assert set(summary["train_entities_outside_labels"]) == {t for d in read_documents(cluener_subset[0]).documents
                                                            for e in d.entities for t in [e.type]} - {"name", "address"}


def test_resume_picks_the_newest_complete_checkpoint_and_refuses_when_there_is_none(tmp_path, caplog):
    from omegaconf import OmegaConf

    from lingshu.training.harness import resume_target

    def tc(resume):
        return OmegaConf.create({"resume": resume})

    assert resume_target(tc(False), tmp_path) is None and resume_target(tc(None), tmp_path) is None
    with pytest.raises(SystemExit, match="no complete checkpoint"):
        resume_target(tc(True), tmp_path)
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    (tmp_path / "checkpoint-4").mkdir()  # a kill while saving: the state file never came
    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # cut mid-write
    with caplog.at_level("WARNING", logger="lingshu"):
        assert resume_target(tc("last"), tmp_path) == str(tmp_path / "checkpoint-2")
    assert "checkpoint-4, checkpoint-6 incomplete" in caplog.text
    assert resume_target(tc(str(tmp_path / "checkpoint-2")), tmp_path) == str(tmp_path / "checkpoint-2")
    with pytest.raises(SystemExit, match="not a complete checkpoint"):
        resume_target(tc(str(tmp_path / "checkpoint-4")), tmp_path)
    (tmp_path / "checkpoint-2" / "trainer_state.json").unlink()
    with pytest.raises(SystemExit, match="checkpoint-2, checkpoint-4, checkpoint-6: no readable"):
        resume_target(tc(True), tmp_path)


@pytest.mark.slow
def test_a_kill_while_saving_leaves_no_checkpoint_that_looks_complete(cluener_subset, tmp_path, monkeypatch):
    """A checkpoint is written into a hidden .checkpoint-N.partial folder and renamed when complete:
    a run that dies while saving step 4 (here: the RNG state write raises, as a kill there would stop
    it) leaves checkpoint-2 complete and no checkpoint-4 at all; a resume continues from step 2 and
    the finished run leaves no partial folder behind."""
    from lingshu.training.train import TaskTrainer

    common = ["model.config.num_hidden_layers=1", "trainer.eval_every=2", "trainer.keep_checkpoints=true",
              "trainer.logging_steps=1", "trainer.early_stopping_patience=0"]
    real = TaskTrainer._save_rng_state

    def dies_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            raise KeyboardInterrupt("killed while saving")
        return real(self, output_dir)

    monkeypatch.setattr(TaskTrainer, "_save_rng_state", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_run(tmp_path, "tiny-bert", "ner-softmax", *cluener_subset, steps=6, extra=common)
    assert (tmp_path / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (tmp_path / "checkpoint-4").exists()
    assert (tmp_path / ".checkpoint-4.partial" / "model.safetensors").is_file()  # what the kill interrupted
    state = json.loads((tmp_path / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and state["best_model_checkpoint"] == str(tmp_path / "checkpoint-2")

    monkeypatch.setattr(TaskTrainer, "_save_rng_state", real)
    train_run(tmp_path, "tiny-bert", "ner-softmax", *cluener_subset, steps=6, extra=common + ["trainer.resume=true"])
    assert json.loads((tmp_path / "train_summary.json").read_text())["global_step"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    assert steps == [1, 2, 3, 4, 5, 6]  # resumed after step 2: steps 3 and 4 trained again
    assert (tmp_path / "checkpoint-6" / "trainer_state.json").is_file()
    assert not list(tmp_path.glob(".checkpoint-*"))
