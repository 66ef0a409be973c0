"""ONNX export of a lingshu model, and the backend that runs the exported graphs.

A model's inference is a few tensor stages (`LingshuModel.stages`: NER and pairs one, "logits";
the three-head relation model two, "mentions" then "relations"; GPLinker one, "links"). Each
stage is exported as its own graph with dynamic batch and length axes; what runs between and
after the stages (the relation model's mention choice, Viterbi, span decoding) is the task's
numpy code, the same for every backend, so it needs no export.

An exported directory is a model directory: config.json and the tokenizer as `lingshu train`
wrote them, and `onnx/` with one `STAGE.onnx` per stage, `arrays.npz` (parameters the numpy
decoding reads, e.g. the CRF's transitions) and `manifest.json` (stages, their inputs and
outputs, int8 or not). It holds no torch weights; `lingshu.load(dir)` runs it on onnxruntime.

    lingshu export onnx runs/cmeee-gp runs/cmeee-gp-onnx [--int8]
    nlp = lingshu.load("runs/cmeee-gp-onnx")            # backend "onnx", picked by itself
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np

from lingshu.inference.backends import Backend

log = logging.getLogger("lingshu")

MANIFEST = "onnx/manifest.json"
FORMAT_VERSION = 1
# what the example batch traced at export is made of (any texts would do: the axes are dynamic)
_EXAMPLE_TEXTS = ["患者三天前出现发热、咳嗽，自服阿莫西林后无好转，今来我院呼吸内科就诊。", "血压偏高。"]
_EXAMPLE_PAIRS = [("糖尿病人能吃西瓜吗", "糖尿病患者可以吃西瓜吗"), ("头痛怎么办", "偏头痛")]


def is_exported(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"ONNX export and the onnx backend need onnx and onnxruntime ({e.name} is missing): "
                         "pip install 'lingshu[onnx]'") from None


class _Stage:
    """One stage of a model as a module with positional inputs, for the exporter."""

    def __new__(cls, model, method: str, names: list[str]):
        import torch

        class Stage(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, *args):
                out = getattr(type(self.model), method)(self.model, **dict(zip(names, args)))
                return tuple(o.float() if o.is_floating_point() else o for o in
                             (out if isinstance(out, tuple) else (out,)))

        return Stage()


def _example_inputs(nlp) -> dict[str, dict[str, np.ndarray]]:
    """Inputs of every stage for a small example batch (two windows of different lengths, so
    the graph is traced with padding), from the pipeline's own featurizer and torch backend."""
    from lingshu.schema import Document

    try:  # a pair pipeline takes (text1, text2); the others refuse it
        docs = [nlp.as_document(p) for p in _EXAMPLE_PAIRS]
    except TypeError:
        docs = [Document(t) for t in _EXAMPLE_TEXTS]
    feats = nlp.preprocess(docs)[0]
    _, first = next(nlp.batches(feats))
    stages = list(nlp.model.stages)
    out = {stages[0]: first}
    if len(stages) == 2:  # the three-head relation model: mentions, then relations over chosen ones
        m = nlp.backend.run(stages[0], first)
        # two mentions and their two ordered pairs per window: shapes only, the axes are dynamic
        b = m["units"].shape[0]
        ment = np.tile(np.array([[[0, 0], [1, 2]]], dtype=np.int64), (b, 1, 1))
        pairs = np.tile(np.array([[[0, 1], [1, 0]]], dtype=np.int64), (b, 1, 1))
        out[stages[1]] = {"units": m["units"], "mentions": ment, "pairs": pairs}
    return out


# model types whose exported graph onnxruntime's transformer optimizer fuses as "bert"
FUSABLE = {"bert", "roberta", "xlm-roberta", "camembert", "ernie", "nezha", "megatron-bert"}


def _fuse(path: Path, config) -> dict | None:
    """Fuse the graph at `path` in place with onnxruntime's transformer optimizer; the fused
    operator counts, or None where it does not apply (another architecture, or it failed: the
    unfused graph is kept, with a warning)."""
    if getattr(config, "model_type", None) not in FUSABLE:
        return None
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize_model(str(path), model_type="bert", num_heads=int(config.num_attention_heads),
                                 hidden_size=int(config.hidden_size), opt_level=0)
        stats = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
        opt.save_model_to_file(str(path))
    except Exception as e:  # noqa: BLE001 - an optimization, never a reason to fail the export
        log.warning("onnxruntime's transformer optimizer did not apply to %s (%s: %s); the graph is kept as "
                    "exported", path.name, type(e).__name__, e)
        return None
    return stats


def export_onnx(model_dir: str | Path, out_dir: str | Path, int8: bool = False, opset: int = 17,
                check: bool = True, optimize: bool = True) -> dict:
    """Export the model in `model_dir` to an ONNX model directory `out_dir`; returns the
    manifest. `int8`: dynamic int8 quantization of the weights (onnxruntime). `optimize`: fuse
    the encoder's operators with onnxruntime's transformer optimizer where it knows the
    architecture (BERT-style encoders: LayerNorm, SkipLayerNorm, BiasGelu; before int8).
    `check`: run the example batch through both backends and report the largest absolute
    difference."""
    _require_onnx()
    import torch

    from lingshu.inference.pipeline import load_pipeline

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if is_exported(model_dir):
        raise SystemExit(f"{model_dir} is already an ONNX export; export the model directory it came from")
    if out_dir.resolve() == model_dir.resolve():
        raise SystemExit("the export's folder must not be the model's own folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not is_exported(out_dir):
        raise SystemExit(f"{out_dir} is not empty and is not an ONNX export; choose a new folder")
    nlp = load_pipeline(model_dir, device="cpu", precision="fp32", backend="torch")
    model = nlp.model.float().eval()
    examples = _example_inputs(nlp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "onnx").mkdir(parents=True)
    manifest: dict = {"format_version": FORMAT_VERSION, "int8": bool(int8), "opset": opset, "stages": {}}
    for stage, (method, out_names) in model.stages.items():
        inputs = examples[stage]
        names = list(inputs)
        args = tuple(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names)
        axes = {n: {i: f"{n}_{i}" for i in range(a.ndim)} for n, a in zip(names, args)}
        path = out_dir / "onnx" / f"{stage}.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer's notes on Python-level branches of the encoder's code (mask shapes): the
            # graph is checked against torch below and in the tests instead
            warnings.simplefilter("ignore")
            module = _Stage(model, method, names)
            ref = module(*args)
            axes.update({n: {i: f"{n}_{i}" for i in range(r.ndim)} for n, r in zip(out_names, ref)})
            torch.onnx.export(module, args, str(path), input_names=names, output_names=list(out_names),
                              dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
        fused = _fuse(path, model.config) if optimize else None
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fp32 = path.with_suffix(".fp32.onnx")
            path.rename(fp32)
            import onnx

            # fused operators (com.microsoft domain) have no ONNX shape inference: their outputs are fp32
            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            fp32.unlink()
        manifest["stages"][stage] = {"file": f"{stage}.onnx", "inputs": names, "outputs": list(out_names)}
        if fused is not None:
            manifest["stages"][stage]["fused"] = fused
    arrays = model.crf_arrays() if hasattr(model, "crf_arrays") else None
    if arrays:
        np.savez(out_dir / "onnx" / "arrays.npz", **arrays)
        manifest["arrays"] = {"crf": sorted(arrays)}
    model.config.save_pretrained(str(out_dir))
    nlp.tokenizer.save_pretrained(str(out_dir))
    if check:
        backend = OnnxBackend(out_dir, manifest)
        worst = 0.0
        for stage, inputs in examples.items():
            want = nlp.backend.run(stage, inputs)
            got = backend.run(stage, inputs)
            for k in want:
                worst = max(worst, float(np.abs(want[k].astype(np.float64) - got[k].astype(np.float64)).max()))
        manifest["check_max_abs_diff"] = worst
        log.info("exported %s: the example batch differs from torch by at most %.3g", out_dir, worst)
    from lingshu import modelcard

    modelcard.write(out_dir, modelcard.export_card(model_dir, out_dir, manifest))
    from lingshu.io import atomic_write_text

    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2))  # last: it marks a complete export
    return manifest


class OnnxBackend(Backend):
    """The exported stages on onnxruntime (CPU; CUDA when asked and installed), graph
    optimizations on. Inputs a graph does not take are left out (a stage's graph keeps only
    the inputs its computation reads)."""

    name = "onnx"

    def __init__(self, path: str | Path, manifest: dict | None = None, device: str = "cpu",
                 threads: int | None = None):
        _require_onnx()
        import onnxruntime as ort

        path = Path(path)
        self.manifest = manifest or json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if self.manifest.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: exported by a newer lingshu (format {self.manifest['format_version']})")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.sessions = {}
        self.inputs = {}
        for stage, st in self.manifest["stages"].items():
            sess = ort.InferenceSession(str(path / "onnx" / st["file"]), opts, providers=providers)
            self.sessions[stage] = sess
            self.inputs[stage] = {i.name: i.type for i in sess.get_inputs()}
        self.outputs = {s: st["outputs"] for s, st in self.manifest["stages"].items()}

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if stage not in self.sessions:
            raise ValueError(f"this export has no stage {stage!r}; it has {', '.join(self.sessions)}")
        feed = {}
        for name, typ in self.inputs[stage].items():
            if name not in inputs:
                raise ValueError(f"stage {stage!r} needs input {name!r}")
            a = np.ascontiguousarray(inputs[name])
            feed[name] = a.astype(np.int64 if "int64" in typ else np.float32, copy=False)
        out = self.sessions[stage].run(self.outputs[stage], feed)
        return dict(zip(self.outputs[stage], out))


def exported_model(path: str | Path):
    """The model object a pipeline needs beside an ONNX backend: the task's model class with
    the directory's config, built on the meta device (no weights, no memory), with the arrays
    the numpy decoding reads restored from the export."""
    import torch
    from transformers import AutoConfig

    from lingshu.modeling.model import LingshuModel

    path = Path(path)
    config = AutoConfig.from_pretrained(str(path))
    with torch.device("meta"):
        model = LingshuModel(config)
    npz = path / "onnx" / "arrays.npz"
    arrays = dict(np.load(npz)) if npz.is_file() else None
    model.crf_arrays = lambda: arrays  # the export's copy, not the meta tensors
    return model
