"""Train a Chinese WordPiece vocabulary for a domain, saved so that `AutoTokenizer` loads it.

    lingshu tokenizer train corpus.txt -o runs/vocab --vocab-size 21128

    from lingshu.pretrain import train_wordpiece
    tok = train_wordpiece(["corpus.txt"], "runs/vocab", vocab_size=21128)

The tokenizer is bert-base-chinese's kind: the BERT normalizer puts spaces around every CJK
character, so each Chinese character is one token and only Latin/digit runs ("hba1c", "mg") are
split into ``##`` word pieces. Special tokens come first: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3
[MASK]=4 (unlike bert-base-chinese, whose specials sit at 0 and 100-103; models read the ids
from the tokenizer, never assume them).
"""

from __future__ import annotations

import argparse
import string
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(
    corpus_files: Sequence[str | Path],
    out_dir: str | Path,
    vocab_size: int = 21128,
    min_frequency: int = 2,
    lowercase: bool = True,
    *,
    progress: bool = True,
):
    """Train a WordPiece vocabulary on text files and save it as a BERT fast tokenizer.

    Every character of the corpus enters the vocabulary (the trainer's alphabet is not limited),
    and so does every printable ASCII character with a ``##`` form of each letter and digit: a
    Chinese corpus may lack the half-width "." or the letter "q", and WordPiece turns a whole word
    ("7.5", "qd") into [UNK] when one piece of it is missing. Frequent Latin/digit pieces then
    fill the vocabulary up to `vocab_size`; a small corpus may end below it (and a corpus whose
    alphabet alone is larger ends above it: characters are never dropped).

    `out_dir` gets tokenizer.json and tokenizer_config.json from `save_pretrained`, plus a
    vocab.txt (one token a line, in id order) for tools that read one. The folder is then
    re-loaded with `AutoTokenizer.from_pretrained` to check it has the trained vocabulary size;
    a folder that silently loads with only the 5 special tokens would turn every character into
    [UNK].

    Args:
        corpus_files: text files, e.g. one sentence a line from `prepare_corpus`.
        out_dir: folder to write; created if missing.
        vocab_size: largest vocabulary, special tokens included (21128 is bert-base-chinese's).
        min_frequency: a word piece must occur this often to be merged into the vocabulary.
        lowercase: lowercase (and strip accents) before tokenizing, like bert-base-chinese.
        progress: show the trainer's progress bar.

    Returns:
        The tokenizer as `AutoTokenizer.from_pretrained(out_dir)` loads it.

    Raises:
        FileNotFoundError: a corpus file is missing (named in the message).
        ValueError: no corpus files, or a vocab_size too small for the special and ASCII tokens.
        RuntimeError: the saved tokenizer does not load with the trained vocabulary size.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import AutoTokenizer, BertTokenizerFast

    from lingshu.io import atomic_write_text

    files = [Path(f) for f in corpus_files]
    if not files:
        raise ValueError("no corpus files given")
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"corpus file not found: {f}")
    ascii_chars = sorted({c.lower() if lowercase else c for c in string.printable if not c.isspace()})
    continuations = ["##" + c for c in ascii_chars if c.isalnum()]
    floor = len(SPECIAL_TOKENS) + len(ascii_chars) + len(continuations)
    if vocab_size <= floor:
        raise ValueError(f"vocab_size must exceed {floor} (special tokens, ASCII characters and their "
                         f"## forms), got {vocab_size}")

    tk = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    # handle_chinese_chars puts spaces around each CJK character, which makes every character
    # its own word for the pre-tokenizer, so the trainer never merges Chinese characters.
    tk.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                               strip_accents=None, lowercase=lowercase)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece(prefix="##")
    # The ## forms missing after training are appended below, so leave room for them.
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size - len(continuations), min_frequency=min_frequency,
                                        special_tokens=SPECIAL_TOKENS, initial_alphabet=ascii_chars,
                                        continuing_subword_prefix="##", show_progress=progress)
    tk.train([str(f) for f in files], trainer)
    vocab = tk.get_vocab()
    missing = [t for t in continuations if t not in vocab]
    if missing:
        base = len(vocab)  # ids stay contiguous: vocab.txt and the embedding rows follow them
        vocab.update((t, base + i) for i, t in enumerate(missing))
        tk.model = models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise RuntimeError("trained vocabulary ids are not contiguous")  # vocab.txt would misalign
    trained = tk.get_vocab_size()

    # BertTokenizerFast adds the [CLS] A [SEP] (B [SEP]) post-processor and the BERT settings
    # that tokenizer_config.json records, so the folder loads as a BERT tokenizer anywhere.
    fast = BertTokenizerFast(tokenizer_object=tk, do_lower_case=lowercase, unk_token="[UNK]",
                             sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    by_id = sorted(vocab, key=vocab.__getitem__)
    atomic_write_text(out / "vocab.txt", "".join(t + "\n" for t in by_id))

    loaded = AutoTokenizer.from_pretrained(str(out))
    if len(loaded) != trained:
        raise RuntimeError(f"{out}: the saved tokenizer loads with {len(loaded)} tokens, "
                           f"but {trained} were trained")
    return loaded


# ----------------------------------------------------------------------------------------------
# CLI


def cmd_tokenizer_train(args: argparse.Namespace) -> int:
    """Run `lingshu tokenizer train`; prints a summary. Returns the exit status."""
    t0 = time.perf_counter()
    try:
        tok = train_wordpiece(args.corpus, args.output, vocab_size=args.vocab_size,
                              min_frequency=args.min_frequency, lowercase=not args.cased,
                              progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    vocab = tok.get_vocab()
    pieces = sum(t.startswith("##") for t in vocab)
    cjk = sum(len(t) == 1 and "\u4e00" <= t <= "\u9fff" for t in vocab)
    print(f"tokenizer train: {len(args.corpus)} file(s) -> {args.output} ({time.perf_counter() - t0:.1f} s)\n"
          f"  vocabulary      {len(tok):>8,}   (asked for {args.vocab_size:,})\n"
          f"  CJK characters  {cjk:>8,}\n"
          f"  ## pieces       {pieces:>8,}\n"
          f"  special ids     " + " ".join(f"{t}={tok.convert_tokens_to_ids(t)}" for t in SPECIAL_TOKENS))
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``tokenizer train`` to a CLI's subparsers (from ``parser.add_subparsers()``).

    Args:
        subparsers: the action returned by `argparse.ArgumentParser.add_subparsers`.

    Returns:
        The ``tokenizer`` parser. ``args.func(args)`` runs the chosen subcommand.
    """
    t = subparsers.add_parser("tokenizer", help="train a WordPiece vocabulary on a domain corpus",
                              description="Train a Chinese WordPiece vocabulary.")
    tsub = t.add_subparsers(dest="tokenizer_cmd", metavar="SUBCOMMAND", required=True)
    p = tsub.add_parser(
        "train", help="train a Chinese WordPiece vocabulary and save it for AutoTokenizer",
        description="Train a BERT-style Chinese WordPiece vocabulary (one token per CJK character, "
                    "## pieces for Latin/digit runs) and save it with save_pretrained.",
    )
    p.add_argument("corpus", nargs="+", metavar="CORPUS", help="text files, e.g. from `lingshu corpus prepare`")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="tokenizer folder to write")
    p.add_argument("--vocab-size", type=int, default=21128, help="largest vocabulary size (default: %(default)s)")
    p.add_argument("--min-frequency", type=int, default=2, help="least count of a merged piece (default: %(default)s)")
    p.add_argument("--cased", action="store_true", help="keep case (default: lowercase like bert-base-chinese)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_tokenizer_train)
    return t
