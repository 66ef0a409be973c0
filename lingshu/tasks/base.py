"""What every task is, and the registry that finds one by name.

A task (`Task`) is everything lingshu needs to know about one kind of prediction: which labels
its heads learn (from the config and the training data), its featurizer, its model class, its
pipeline (model outputs -> `Document`s), its metrics and report table, which output layouts can
hold its predictions and its dev-data policy. The CLI, training, evaluation and the pipeline ask
the task; none of them compares task or decoder names.

Tasks are registered by name (the `task:` field of a task config, stored in every model
directory's config.json). The built-in ones (ner, re, pair) load on first use; a package can add
one with an entry point in the group "lingshu.tasks", or code can call `register` directly:

    from lingshu.tasks import Task, register
    register(MyTask(), configs={"my-task": {"name": "my-task", "task": "my", ...}})

`configs` become Hydra configs of the `task` group, so `lingshu train task=my-task` finds them.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from lingshu.modeling.spec import ModelSpec

log = logging.getLogger("lingshu")

BUILTIN = {"ner": "lingshu.tasks.ner", "re": "lingshu.tasks.re", "pair": "lingshu.tasks.pair"}
ENTRY_POINT_GROUP = "lingshu.tasks"
DEFAULT_TASK = "ner"  # a model directory without a `task` field was written when NER was the only task

_REGISTRY: dict[str, Task] = {}


class Task:
    """One kind of prediction. Subclasses set the class attributes and the methods marked
    "required"; the rest have defaults that suit a task whose main score is an F1."""

    name: str = ""
    main_metric: str = "f1"  # the key of `eval_metrics` (without prefix) that selects the best checkpoint
    output_layouts: tuple[str, ...] = ("spans",)  # layouts that hold its predictions, the default first
    # for model cards (lingshu.modelcard): what the labels are, and a call of the model in Python
    labels_noun = "entity types"
    usage_example = 'doc = nlp("患者因发热三天就诊于呼吸内科。")\nprint([(e.text, e.type) for e in doc.ents])'
    eval_layouts: tuple[str, ...] | None = None  # layouts `lingshu evaluate` scores (None: any it reads)
    input_layouts: tuple[str, ...] | None = None  # layouts `lingshu predict` reads (None: any; its text)
    noun: str = "entity"  # what `predict` counts and the no-prediction warning names
    curve: dict = {}  # plot_curves options (metric, name, ylabel) for the dev curve
    config_keys: tuple[str, ...] = ("dropout",)  # task-config keys copied into config.json
    keeps_pooler: bool = False  # load a checkpoint's pooler with its encoder (when the config asks for it)

    # --- configuration and data ---------------------------------------------------------
    def check_spec(self, spec: ModelSpec) -> None:
        """Raise ValueError for a config.json spec this task cannot build (an unknown decoder)."""

    def train_documents(self, cfg, docs: list) -> list:
        """The training documents the task learns from (default: all)."""
        return docs

    def labels(self, cfg, train_docs: list) -> dict:  # required
        """The config.json fields that depend on data: at least "labels"."""
        raise NotImplementedError

    def finish_spec(self, model, spec: ModelSpec) -> ModelSpec:
        """The spec once the encoder is known (e.g. whether it has segment embeddings)."""
        return spec

    def featurizer(self, spec: ModelSpec, tokenizer, padding_free: bool = False, cfg=None):  # required
        """Documents <-> features for this model. `cfg`: the training config (None at inference)."""
        raise NotImplementedError

    # --- model and pipeline ---------------------------------------------------------------
    def model_class(self, spec: ModelSpec):  # required
        """The `LingshuModel` subclass that holds this task's heads."""
        raise NotImplementedError

    pipeline_class = None  # required: a lingshu.inference.pipeline.Pipeline subclass

    # --- evaluation -----------------------------------------------------------------------
    def metrics(self, gold: list, pred: list) -> dict:  # required
        raise NotImplementedError

    def eval_metrics(self, report: dict, prefix: str = "eval") -> dict[str, float]:
        """What training logs after each dev evaluation (one of them is `main_metric`)."""
        m = report["micro"]
        return {f"{prefix}_f1": m["f1"], f"{prefix}_precision": m["precision"], f"{prefix}_recall": m["recall"]}

    def format_report(self, report: dict) -> str:
        from lingshu.training.metrics import format_table

        return format_table(report)

    def extra_reports(self, gold: list, pred: list, spec: ModelSpec, tokenizer) -> dict[str, tuple[str, str]]:
        """More reports `lingshu evaluate` prints and stores: {key: (title, text)}."""
        return {}

    def eval_allowed_labels(self, labels: list[str], strict: bool = False, patterns=None):
        """What a dev/test reader allows, for training-time dev scoring and `lingshu evaluate`
        alike. Default: nothing dropped (a gold label the model does not know counts as a miss);
        `strict` (evaluate --strict-labels) skips records with labels the model does not know."""
        return set(labels) if strict else None

    def prediction_warning(self, report: dict) -> str | None:
        from lingshu.training.health import nothing_predicted_warning

        return nothing_predicted_warning(report, self.noun)

    def has_gold(self, docs: list) -> bool:
        """Whether `docs` hold anything to score against; False (an unlabelled test file) makes
        `lingshu evaluate` refuse instead of printing zeros. Default: True (a task that cannot
        tell is scored as given)."""
        return True

    def count(self, doc) -> int:
        """How many predictions a document holds (what `lingshu predict` counts)."""
        return len(doc.entities)

    def summarize(self, total: int) -> str:
        """What `lingshu predict` says it wrote, from the sum of `count`, e.g. "1,234 entities"."""
        return f"{total:,} {'entities' if self.noun == 'entity' else self.noun + 's'}"

    def output_layout(self, requested: str | None, input_layout: str | None) -> str:
        """The layout predictions are written in: `requested` when it holds them (else
        ValueError), else the input's when it does, else the task's default."""
        if requested:
            if requested not in self.output_layouts:
                raise ValueError(f"a {self.name} model's predictions cannot be written as {requested!r} "
                                 f"(it would lose them); choose from: {', '.join(self.output_layouts)}")
            return requested
        return input_layout if input_layout in self.output_layouts else self.output_layouts[0]

    def __repr__(self) -> str:
        return f"<lingshu task {self.name!r}>"


def register(task: Task, configs: dict[str, dict] | None = None, replace: bool = False) -> Task:
    """Add a task to the registry (and, optionally, Hydra configs to the `task` group)."""
    if not task.name:
        raise ValueError(f"{task!r} has no name")
    if task.name in _REGISTRY and not replace and _REGISTRY[task.name] is not task:
        raise ValueError(f"a task named {task.name!r} is already registered ({_REGISTRY[task.name]!r}); "
                         "pass replace=True to replace it")
    _REGISTRY[task.name] = task
    if configs:
        from hydra.core.config_store import ConfigStore

        for cname, node in configs.items():
            ConfigStore.instance().store(group="task", name=cname, node=node)
    return task


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _from_entry_points(name: str) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            obj = ep.load()
            task = obj() if isinstance(obj, type) else obj
            if name not in _REGISTRY:
                register(task)
            return


def get_task(name: str | None) -> Task:
    """The registered task called `name` (None: the default, NER)."""
    name = name or DEFAULT_TASK
    if name not in _REGISTRY:
        if name in BUILTIN:
            importlib.import_module(BUILTIN[name])
        else:
            _from_entry_points(name)
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; registered: {', '.join(task_names())}")
    return _REGISTRY[name]


def task_of(spec) -> Task:
    """The task a model's spec names (a `ModelSpec`, or config.json's `lingshu` dict)."""
    return get_task(spec.task if isinstance(spec, ModelSpec) else spec.get("task"))


def task_names() -> list[str]:
    for name in BUILTIN:
        if name not in _REGISTRY:
            importlib.import_module(BUILTIN[name])
    return sorted(_REGISTRY)
