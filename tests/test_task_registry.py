"""A task defined here, in the test file, goes through `lingshu train`, `evaluate` and `predict`
without any change to the package: the registry (lingshu.tasks) is the only way in.

The toy task: does a CLUENER text mention a person (an entity of type `name`)? One label per text,
from a linear layer over the first token.
"""

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from lingshu.inference.pipeline import Pipeline
from lingshu.modeling.model import LingshuModel, LingshuOutput
from lingshu.schema import Document
from lingshu.tasks import Task, get_task, register, task_names, unregister

LABELS = ["no", "yes"]


def gold_label(doc: Document) -> str:
    return "yes" if any(e.type == "name" for e in doc.entities) else "no"


class ToyModel(LingshuModel):
    def build_heads(self, hidden):
        self.out = nn.Linear(hidden, len(self.spec.labels))

    def forward(self, input_ids, attention_mask=None, labels=None, **_):
        first = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        logits = self.out(first).float()
        return LingshuOutput(loss=nn.functional.cross_entropy(logits, labels) if labels is not None else None,
                             logits=logits)


@dataclass
class ToyStats:
    texts: int

    def summary(self):
        return f"{self.texts} texts"


class ToyFeaturizer:
    def __init__(self, tok, max_len):
        self.tok, self.max_len = tok, max_len

    def features(self, docs, with_labels=True):
        ids = self.tok([d.text for d in docs], truncation=True, max_length=self.max_len)["input_ids"]
        feats = [{"input_ids": x} for x in ids]
        if with_labels:
            for f, d in zip(feats, docs):
                f["label"] = LABELS.index(gold_label(d))
        return feats, ToyStats(len(docs))

    def train_dataset(self, feats):
        return feats

    def collate(self, batch):
        n, t = len(batch), max(len(f["input_ids"]) for f in batch)
        ids = torch.full((n, t), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, t), dtype=torch.long)
        for i, f in enumerate(batch):
            ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            mask[i, : len(f["input_ids"])] = 1
        out = {"input_ids": ids, "attention_mask": mask}
        if "label" in batch[0]:
            out["labels"] = torch.tensor([f["label"] for f in batch])
        return out


class ToyPipeline(Pipeline):
    @torch.no_grad()
    def predict(self, docs, progress=False):
        feats, _ = self.featurizer.features(docs, with_labels=False)
        out = [None] * len(docs)
        for idx, inputs in self.batches(feats, progress):
            logits = torch.from_numpy(self.backend.run("logits", inputs)["logits"])
            for i, p in zip(idx, torch.softmax(logits, -1)):
                d = docs[i]
                out[i] = Document(d.text, id=d.id, meta=d.meta, source=d.source, label=LABELS[int(p.argmax())],
                                  label_scores=dict(zip(LABELS, p.tolist())))
        return out


class ToyTask(Task):
    name = "toy-person"
    main_metric = "accuracy"
    output_layouts = ("spans",)
    noun = "label"
    pipeline_class = ToyPipeline

    def labels(self, cfg, train_docs):
        return {"labels": LABELS}

    def featurizer(self, spec, tokenizer, padding_free=False, cfg=None):
        return ToyFeaturizer(tokenizer, spec.max_seq_length)

    def model_class(self, spec):
        return ToyModel

    def metrics(self, gold, pred):
        right = sum(gold_label(g) == p.label for g, p in zip(gold, pred))
        n = len(gold)
        return {"scheme": "accuracy of the person / no-person label", "accuracy": right / n, "documents": n,
                "micro": {"precision": right / n, "recall": right / n, "f1": right / n, "support": n, "predicted": n}}

    def eval_metrics(self, report, prefix="eval"):
        return {f"{prefix}_accuracy": report["accuracy"]}

    def format_report(self, report):
        return f"accuracy {report['accuracy']:.4f} on {report['documents']} texts"

    def count(self, doc):
        return int(doc.label == "yes")

    def summarize(self, total):
        return f"{total} texts with a person"


@pytest.fixture(scope="module")
def toy_task():
    task = register(ToyTask(), configs={"toy-person": {"name": "toy-person", "task": "toy-person", "decoder": None,
                                                       "labels": None, "max_seq_length": 64, "stride": 0,
                                                       "dropout": 0.1}})
    yield task
    unregister(task.name)


def test_registry_knows_the_builtin_tasks_and_refuses_unknown_names():
    assert {"ner", "re", "pair"} <= set(task_names())
    assert get_task(None) is get_task("ner")  # a directory written before tasks had names
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_task("nope")
    with pytest.raises(ValueError, match="already registered"):
        register(type(get_task("ner"))())


@pytest.mark.slow
def test_a_task_defined_in_a_test_trains_evaluates_and_predicts_through_the_cli(toy_task, cluener_subset, tmp_path,
                                                                                capsys):
    from lingshu.cli import main
    from lingshu.data import read_documents

    train, dev = cluener_subset
    out = tmp_path / "toy"
    assert main(["train", "task=toy-person", "model=tiny-bert", f"data.train={train}", f"data.dev={dev}",
                 "trainer.max_steps=40", "trainer.batch_size=16", "trainer.learning_rate=1e-3",
                 "trainer.progress=false", "trainer.eval_every=20", "model.config.num_hidden_layers=2",
                 f"output_dir={out}"]) == 0
    spec = json.loads((out / "config.json").read_text(encoding="utf-8"))["lingshu"]
    assert spec["task"] == "toy-person" and spec["labels"] == LABELS
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    logged = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_accuracy" in r for r in logged)  # the task's main metric selected the checkpoint
    assert summary["dev"]["documents"] == 200

    rep = tmp_path / "report.json"
    assert main(["evaluate", str(out), str(dev), "-o", str(rep), "--device", "cpu"]) == 0
    assert "accuracy" in capsys.readouterr().out
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["task"] == "toy-person" and report["accuracy"] == pytest.approx(summary["dev"]["accuracy"])

    pred = tmp_path / "pred.jsonl"
    assert main(["predict", str(out), str(dev), "-o", str(pred), "--device", "cpu"]) == 0
    assert "texts with a person" in capsys.readouterr().out
    rows = [json.loads(x) for x in pred.read_text(encoding="utf-8").splitlines()]
    gold = read_documents(dev).documents
    assert [r["text"] for r in rows] == [d.text for d in gold]  # every record, in input order
    assert {r["label"] for r in rows} <= set(LABELS)
    acc = sum(r["label"] == gold_label(d) for r, d in zip(rows, gold)) / len(gold)
    assert acc == pytest.approx(report["accuracy"])  # evaluate scored what predict wrote
    # a layout that cannot hold the labels is refused before anything is predicted
    assert main(["predict", str(out), str(dev), "-o", str(tmp_path / "x.json"), "--output-format", "cmeee"]) == 2
    assert "cannot be written as 'cmeee'" in capsys.readouterr().err
