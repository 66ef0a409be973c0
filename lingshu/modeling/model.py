"""`LingshuModel`: any HF encoder + a task's heads, saved and loaded the save_pretrained way.

The encoder's own config.json is the model's config; the task lives in one extra field,
`config.lingshu` = {"task", "decoder", "labels", "max_seq_length", "stride", …} (a
`ModelSpec`, lingshu.modeling.spec, stored as a dict), so `AutoConfig.from_pretrained(dir)` still
reads it and `lingshu.load(dir)` needs nothing else.

`LingshuModel` is the base class: the encoder, the gather of one vector per unit, weight
initialisation. Each task's heads and forward live in its own subclass, in lingshu/tasks/
(`NerModel`, `SpanTypePatternModel`, `GPLinkerModel`, `PairModel`); like transformers' Auto
classes, `LingshuModel(config)` and `LingshuModel.from_pretrained(dir)` build the subclass the
config's task names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from lingshu.modeling.spec import ModelSpec


@dataclass
class LingshuOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class LingshuModel(PreTrainedModel):
    """An encoder with the heads of one task (module docstring).

    Token-level heads (NER, RE) read one vector per unit (character), gathered from the
    encoder's tokens by `unit_index` (`units`); see lingshu.text.align.
    """

    config_class = PretrainedConfig  # any encoder's config; AutoConfig picks the class
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def __new__(cls, config: PretrainedConfig, *args, **kwargs):
        if cls is LingshuModel:  # the task's own class, as AutoModel picks one
            from lingshu.tasks import task_of

            cls = task_of(config.lingshu).model_class(ModelSpec.from_dict(config.lingshu))
        return super().__new__(cls)

    def __init__(self, config: PretrainedConfig, backbone: nn.Module | None = None):
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config)
        if getattr(self.backbone, "pooler", None) is not None and not self.reads_pooler:
            self.backbone.pooler = None  # no head reads it; saves a matmul per step
        self.dropout_p = self.spec.dropout
        self.build_heads(config.hidden_size)
        self.post_init()

    reads_pooler = False  # a head that reads the encoder's pooler output keeps the pooler
    # inference stages a backend runs (lingshu.inference.backends): {stage: (method, output names)}
    stages: dict[str, tuple[str, tuple[str, ...]]] = {"logits": ("logits", ("logits",))}

    def logits(self, **inputs):
        """Inference: the forward's logits alone (a tensor function of the batch). The class's
        forward: during training accelerate wraps the instance's in bf16 autocast."""
        return type(self).forward(self, **inputs).logits

    def build_heads(self, hidden: int) -> None:
        """Create the task's head modules (subclasses)."""

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        # only the heads' modules come here: the encoder (a PreTrainedModel) is initialised by its
        # own class, or keeps the checkpoint's weights
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):  # the relation head's distance buckets
            module.weight.data.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def init_priors(self, features: list[dict]) -> dict:
        """Start the head's output biases at the training data's log label priors (subclasses
        that can); returns what was set, for the log.

        A fresh head with zero biases predicts uniform labels, while most units are `O` (most
        spans are not entities). With Adam a bias moves about one learning rate per step, so
        learning the prior through the bias takes thousands of steps; the encoder, with millions
        of weights moving together, learns it first, by mapping every token to the same vector.
        On a pretrained encoder (multilingual-e5-small at 2e-4) that collapse costs a third of an
        epoch, or the whole run with a fast head (benchmarks/RESULTS.md). Starting at the prior
        removes the reason for it.
        """
        return {}

    @staticmethod
    def log_priors(counts: torch.Tensor) -> torch.Tensor:
        """Log label frequencies, add-one smoothed."""
        return torch.log((counts + 1) / (counts.sum() + len(counts)))

    @property
    def spec(self) -> ModelSpec:
        """The typed view of config.json's `lingshu` field (lingshu.modeling.spec)."""
        return ModelSpec.from_dict(self.config.lingshu)

    def units(self, input_ids, attention_mask, unit_index, position_ids=None, seq_lens=None):
        if seq_lens is not None:  # one packed row: unit_index points into it
            hidden = self.backbone(input_ids=input_ids, position_ids=position_ids,
                                   **packed_attention(self.config, seq_lens)).last_hidden_state
            return hidden[0][unit_index]
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        idx = unit_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        return torch.gather(hidden, 1, idx)


def packed_attention(config, seq_lens: torch.Tensor) -> dict:
    """Attention arguments for sequences packed into one row (padding-free batches).

    With flash-attention 2 (CUDA), transformers' varlen kernels take cumulative sequence
    lengths and never look across sequences. Any other implementation gets an explicit
    block-diagonal mask (and, for ModernBERT's sliding layers, the same blocks cut to the local
    window), which is exact but costs O(N^2) memory: a CPU fallback and a correctness check.
    """
    if config._attn_implementation == "flash_attention_2":
        cu = torch.nn.functional.pad(seq_lens.cumsum(0), (1, 0)).to(torch.int32)
        m = int(seq_lens.max())
        return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": m, "max_length_k": m}
    seg = torch.repeat_interleave(torch.arange(len(seq_lens), device=seq_lens.device), seq_lens)
    block = (seg[:, None] == seg[None, :])[None, None]
    if "sliding_attention" in (getattr(config, "layer_types", None) or []):
        pos = torch.arange(len(seg), device=seg.device)
        band = (pos[:, None] - pos[None, :]).abs() <= config.sliding_window
        return {"attention_mask": {"full_attention": block, "sliding_attention": block & band[None, None]}}
    return {"attention_mask": block}


def load_model(path: str) -> LingshuModel:
    """Load a model directory written by lingshu (config.json with a `lingshu` field)."""
    from lingshu.modeling.backbone import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(path))
    if not hasattr(config, "lingshu"):
        raise ValueError(f"{path}/config.json has no 'lingshu' field: not a lingshu task model "
                         "(an encoder checkpoint is passed as model.name_or_path to `lingshu train`)")
    return LingshuModel.from_pretrained(path, config=config)  # the task's class (`__new__`)
