"""`LingshuModel`: any HF encoder + a task head, saved and loaded the save_pretrained way.

The encoder's own config.json is the model's config; the task lives in one extra field,
`config.lingshu` = {"task", "decoder", "labels", "max_seq_length", "stride", …}, so
`AutoConfig.from_pretrained(dir)` still reads it and `lingshu.load(dir)` needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from lingshu.modeling.heads import GlobalPointer, TagHead
from lingshu.schema import bios_tags

DECODERS = ("softmax", "crf", "globalpointer")


@dataclass
class LingshuOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class LingshuModel(PreTrainedModel):
    """An encoder with a NER head (softmax / CRF over BIOS tags, or GlobalPointer spans).

    Heads read one vector per unit (character), gathered from the encoder's tokens by
    `unit_index`; see lingshu.text.align.
    """

    config_class = PretrainedConfig  # any encoder's config; AutoConfig picks the class
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def __init__(self, config: PretrainedConfig, backbone: nn.Module | None = None):
        super().__init__(config)
        spec = config.lingshu
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config)
        if getattr(self.backbone, "pooler", None) is not None:
            self.backbone.pooler = None  # token tasks never use it; saves a matmul per step
        hidden = config.hidden_size
        dropout = float(spec.get("dropout", 0.1))
        self.decoder = spec["decoder"]
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; choose one of {DECODERS}")
        if self.decoder == "globalpointer":
            self.head = GlobalPointer(hidden, len(spec["labels"]), int(spec.get("head_size", 64)), dropout)
        else:
            self.head = TagHead(hidden, len(bios_tags(spec["labels"])), self.decoder == "crf", dropout)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()

    @property
    def spec(self) -> dict:
        return self.config.lingshu

    def units(self, input_ids, attention_mask, unit_index, position_ids=None, seq_lens=None):
        if seq_lens is not None:  # one packed row: unit_index points into it
            hidden = self.backbone(input_ids=input_ids, position_ids=position_ids,
                                   **packed_attention(self.config, seq_lens)).last_hidden_state
            return hidden[0][unit_index]
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        idx = unit_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        return torch.gather(hidden, 1, idx)

    def forward(self, input_ids, unit_index, unit_mask, attention_mask=None, labels=None, spans=None,
                position_ids=None, seq_lens=None, **_):
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        mask = unit_mask.bool()
        if self.decoder == "globalpointer":
            logits = self.head(units, mask)
            loss = GlobalPointer.loss(logits, spans) if spans is not None else None
        else:
            logits = self.head(units)
            loss = self.head.loss(logits, labels, mask) if labels is not None else None
        return LingshuOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def decode(self, logits: torch.Tensor, unit_mask: torch.Tensor):
        """Logits -> per window a list of (start_unit, end_unit, type_index, score)."""
        labels = self.spec["labels"]
        if self.decoder == "globalpointer":
            return [[(i, j, labels[t], s) for i, j, t, s in row] for row in GlobalPointer.decode(logits)]
        from lingshu.text.tags import bios_to_spans

        tags = bios_tags(labels)
        paths = self.head.decode(logits, unit_mask.bool())
        return [[(s, e, t, None) for s, e, t in bios_to_spans([tags[i] for i in p])] for p in paths]

    def decode_tags(self, logits: torch.Tensor, unit_mask: torch.Tensor) -> list[list[str]]:
        tags = bios_tags(self.spec["labels"])
        return [[tags[i] for i in p] for p in self.head.decode(logits, unit_mask.bool())]


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
    config = AutoConfig.from_pretrained(path)
    if not hasattr(config, "lingshu"):
        raise ValueError(f"{path}/config.json has no 'lingshu' field: not a lingshu task model "
                         "(an encoder checkpoint is passed as model.name_or_path to `lingshu train`)")
    return LingshuModel.from_pretrained(path, config=config)
