"""Tasks: one module per kind of prediction, each a `Task` registered by name.

    lingshu/tasks/base.py   the `Task` interface and the registry (`get_task`, `register`)
    lingshu/tasks/ner.py    entities: softmax / CRF over BIOS tags, or GlobalPointer spans (nested)
    lingshu/tasks/re.py     SPO triples: the three-head model or GPLinker
    lingshu/tasks/pair.py   sentence-pair classification

A task owns its labels, featurizer, model class, pipeline, metrics, output layouts and dev-label
policy; everything else in lingshu asks it (see base.py).
"""

from lingshu.tasks.base import DEFAULT_TASK, Task, get_task, register, task_names, task_of, unregister

__all__ = ["Task", "get_task", "register", "task_names", "task_of", "unregister", "DEFAULT_TASK"]
