"""Domain-adaptive pretraining: corpus preparation, vocabulary training, continued MLM.

    lingshu corpus prepare ../shared/data/corpus/*.txt -o corpus.txt
    lingshu tokenizer train corpus.txt -o tok
    lingshu adapt model=tiny-bert model.tokenizer=tok data.train=corpus.txt \
        masking.lexicon=../shared/data/lexicon/cmekg_terms.txt trainer.max_steps=300 output_dir=runs/mlm
    lingshu fill-mask runs/mlm "患者出现[MASK][MASK]等症状"

Exports are imported lazily: `lingshu corpus prepare` forks worker processes, and importing
torch (masking, mlm) for it would cost seconds and hundreds of MB in every worker.
"""

from importlib import import_module

_EXPORTS = {
    "PrepareSummary": "corpus", "clean_sentence": "corpus", "prepare_corpus": "corpus", "split_sentences": "corpus",
    "train_wordpiece": "tokenizer",
    "Segmenter": "lexicon", "load_lexicon": "lexicon", "safe_load_pickle": "lexicon",
    "EntityAwareWWMCollator": "masking", "encode_for_mlm": "masking",
    "run_adapt": "mlm", "fill_mask": "mlm",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"lingshu.pretrain.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'lingshu.pretrain' has no attribute {name!r}")
