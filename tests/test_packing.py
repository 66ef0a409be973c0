"""Padding-free (packed) batches give the same outputs as padded ones.

On CUDA with flash-attention 2 the packed row goes through varlen kernels; elsewhere through
an explicit block-diagonal mask. This checks the packing itself (unit indices, position ids,
ModernBERT's sliding window inside each block) against ordinary padded batches, on CPU.
"""

import pytest
import torch

from lingshu.modeling.backbone import scratch_config
from lingshu.modeling.model import LingshuModel
from lingshu.schema import Document, Entity
from lingshu.text.features import Featurizer


@pytest.mark.parametrize("arch,extra", [("bert", {}), ("modernbert", {"local_attention": 16})])
def test_packed_equals_padded(arch, extra, bert_tok):
    torch.manual_seed(0)
    params = {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 128, **extra}
    cfg = scratch_config(arch, params, bert_tok, "sdpa")
    cfg.lingshu = {"decoder": "globalpointer", "labels": ["dis", "sym"]}
    model = LingshuModel(cfg).eval()
    texts = ["患者出现发热咳嗽三天，诊断为社区获得性肺炎，给予阿莫西林治疗。" * 2, "头痛。", "血常规检查提示白细胞升高。"]
    docs = [Document(t, [Entity(2, 4, "sym", t[2:4])]) for t in texts]
    padded = Featurizer(bert_tok, ["dis", "sym"], True, 128, 32)
    packed = Featurizer(bert_tok, ["dis", "sym"], True, 128, 32, padding_free=True)
    feats, *_ = padded.features(docs)
    assert max(len(f["input_ids"]) for f in feats) > 2 * 16  # longer than the sliding window
    a, b = padded.collate(feats), packed.collate(feats)
    assert b["input_ids"].shape == (1, sum(len(f["input_ids"]) for f in feats))
    with torch.no_grad():
        out_a, out_b = model(**a), model(**b)
    valid = a["unit_mask"].bool()
    la = out_a.logits.masked_select(valid[:, None, :, None] & valid[:, None, None, :])
    lb = out_b.logits.masked_select(valid[:, None, :, None] & valid[:, None, None, :])
    assert torch.allclose(la, lb, atol=1e-4)
    assert torch.allclose(out_a.loss, out_b.loss, atol=1e-4)
