"""lingshu (灵枢): adapt Chinese BERT-family encoders to a domain and extract structure from
Chinese medical text.

    >>> import lingshu
    >>> nlp = lingshu.load("runs/cmeee-gp")      # a directory written by `lingshu train`
    >>> doc = nlp("患者因发热三天就诊于呼吸内科。")
    >>> [(e.text, e.type, e.start, e.end) for e in doc.ents]
"""

from lingshu.schema import Document, Entity, LabelSet, Relation

__version__ = "0.1.0"
__all__ = ["load", "Document", "Entity", "Relation", "LabelSet", "__version__"]


def load(path: str, device: str | None = None, batch_size: int = 64, precision: str | None = None,
         backend: str | None = None, threads: int | None = None):
    """Load a trained lingshu model directory as a callable.

    NER: `nlp(text) -> Document` (entities); RE: `nlp(text) -> Document` (relations, plus the
    mentions as entities); pair: `nlp(text1, text2) -> Document` (label, label_scores).

    Args:
        path: a directory written by `lingshu train` (config.json, model.safetensors, tokenizer).
        device: "cpu", "cuda", "cuda:1", …; default: CUDA when available.
        batch_size: windows per forward pass when given many texts.
        precision: "fp32" or "bf16" (autocast); default: fp32 on CPU, and on CUDA what the model
            was trained with.
        backend: what runs the model's tensor stages (lingshu.inference.backends): "torch" for a
            directory `lingshu train` wrote, "onnx" for one `lingshu export onnx` wrote; default:
            the one the directory holds.
        threads: CPU threads for one forward pass: onnxruntime's intra-op threads for this
            model's sessions (onnx), `torch.set_num_threads` for the process (torch); default:
            the library's own choice (all cores).
    """
    from lingshu.inference.pipeline import load_pipeline

    return load_pipeline(path, device=device, batch_size=batch_size, precision=precision, backend=backend, threads=threads)
