import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def bert_tok(shared):
    from lingshu.modeling.backbone import load_tokenizer

    return load_tokenizer(str(shared / "vocab" / "bert-base-chinese"))


@pytest.fixture(scope="session")
def xlmr_tok(shared):
    from lingshu.modeling.backbone import load_tokenizer

    return load_tokenizer(str(shared / "tokenizers" / "xlm-r-multilingual-e5-small"))


@pytest.fixture(scope="session")
def bpe_tok(tmp_path_factory):
    """A byte-level BPE tokenizer (ModernBERT's kind) trained here on a few sentences."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = ["患者出现发热咳嗽，诊断为社区获得性肺炎。", "MRI shows a lesion in the left lobe 2019年",
              "糖化血红蛋白HbA1c升高", "阿莫西林胶囊0.5g口服"] * 20
    tk.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    return fast


def corpus_sample(shared: Path, width: int, per_file: int = 200) -> list[str]:
    """The first `per_file` lines (cut to `width` characters) of three shared corpus files: QA
    dialogue, clinical text and paper abstracts, for the pretraining tests."""
    lines = []
    for name in ("medical_qa_dialogue.txt", "medical_clinical_misc.txt", "csl_abstracts.txt"):
        with open(shared / "corpus" / name, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= per_file:
                    break
                lines.append(line.rstrip("\n")[:width])
    return lines


def _subset(shared: Path, out: Path, n_train: int = 800, n_dev: int = 200) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    lines = (shared / "cluener" / "train.json").read_text(encoding="utf-8").splitlines()
    (out / "train.json").write_text("\n".join(lines[:n_train]) + "\n", encoding="utf-8")
    lines = (shared / "cluener" / "dev.json").read_text(encoding="utf-8").splitlines()
    (out / "dev.json").write_text("\n".join(lines[:n_dev]) + "\n", encoding="utf-8")
    return out / "train.json", out / "dev.json"


@pytest.fixture(scope="session")
def cluener_subset(shared, tmp_path_factory):
    """The first 800 train / 200 dev records of CLUENER2020 (read from ../shared, never copied
    into the repository)."""
    return _subset(shared, tmp_path_factory.mktemp("cluener"))


def train_run(out_dir: Path, model: str, task: str, train: Path, dev: Path, steps: int = 60, extra=()):
    from lingshu.config import compose
    from lingshu.training.train import run

    cfg = compose([f"model={model}", f"task={task}", f"data.train={train}", f"data.dev={dev}",
                   f"trainer.max_steps={steps}", "trainer.batch_size=16", "trainer.learning_rate=1e-3",
                   "trainer.progress=false", "trainer.eval_every=1000", "data.max_seq_length=64", *extra])
    return run(cfg, out_dir)


@pytest.fixture(scope="session")
def crf_model(cluener_subset, tmp_path_factory):
    """A tiny-bert + CRF trained for 60 steps on the CLUENER subset: (run_dir, dev report).
    Trained once per test run: under pytest-xdist the first worker to ask trains it in the run's
    shared temp folder while the others wait on a file lock, then read it (tests only read it)."""
    import json
    import os

    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/, shared by the run's workers
    out, saved = root / "crf-model" / "run", root / "crf-model" / "report.json"
    with FileLock(str(root / "crf-model.lock")):
        if not saved.exists():
            report = train_run(out, "tiny-bert", "ner-crf", *cluener_subset)
            saved.write_text(json.dumps(report, default=float), encoding="utf-8")
    return out, json.loads(saved.read_text(encoding="utf-8"))


def torch_and_int8_reports(run_dir: Path, dev: Path, tmp_path: Path) -> dict[str, dict]:
    """`lingshu evaluate` reports on `dev` of a trained model and of its int8 ONNX export."""
    import json

    from lingshu.cli import main
    from lingshu.inference.onnx import export_onnx

    export_onnx(run_dir, tmp_path / "int8", int8=True)
    reports = {}
    for name, model in (("torch", run_dir), ("int8", tmp_path / "int8")):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", str(model), str(dev), "-o", str(out)]) == 0
        reports[name] = json.loads(out.read_text(encoding="utf-8"))
    return reports


# fixtures that train a model: every test using one is slow too (`pytest -m "not slow"` skips them)
TRAINING_FIXTURES = {"crf_model", "pair_run", "re_run", "mlm_dir"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
