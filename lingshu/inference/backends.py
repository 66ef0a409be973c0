"""Backends: what runs a model's tensor stages. numpy arrays in, numpy arrays out.

A pipeline featurizes documents, hands each batch to its backend as numpy arrays, and decodes the
arrays the backend returns (lingshu.decoding); nothing else in the pipeline touches torch. A
model names its stages in `stages`: {stage: (method, output names)}; most have one ("logits"),
the three-head relation model two ("mentions", then "relations" over the mentions chosen in
between). `TorchBackend` runs them on the model in memory; another backend (an exported graph)
only has to produce the same arrays (`lingshu.inference.onnx.OnnxBackend`: the stages exported
as ONNX graphs, on onnxruntime).
"""

from __future__ import annotations

import numpy as np
import torch


class Backend:
    name = ""

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


class TorchBackend(Backend):
    """The model's stages in torch: on `device`, without gradients, in eval mode (training mode
    restored afterwards, for dev scoring during training), bf16 autocast when `precision` says so."""

    name = "torch"

    def __init__(self, model, device: torch.device, precision: str):
        self.model, self.device, self.precision = model, device, precision
        self.model.to(device).eval()

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        model = self.model
        if stage not in model.stages:
            raise ValueError(f"{type(model).__name__} has no stage {stage!r}; it has {', '.join(model.stages)}")
        method, names = model.stages[stage]
        # the class's function, not the instance's attribute: during training accelerate wraps
        # `model.forward` in autocast, and dev scores must be computed as `lingshu evaluate` does
        fn = getattr(type(model), method)
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in inputs.items()}
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                 enabled=self.precision == "bf16"):
                out = fn(model, **tensors)
        finally:
            if was_training:
                model.train()
        out = out if isinstance(out, tuple) else (out,)
        return {n: (o.float() if o.is_floating_point() else o).cpu().numpy() for n, o in zip(names, out)}


BACKENDS = {"torch": TorchBackend}  # built around an in-memory model; "onnx" loads from a folder


def make_backend(name, model, device: torch.device, precision: str) -> Backend:
    """`name` from BACKENDS, or a Backend already built (lingshu.inference.onnx.OnnxBackend)."""
    if isinstance(name, Backend):
        return name
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    return BACKENDS[name](model, device, precision)
