"""Logging helpers."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def quieter(logger: str | logging.Logger, level: int = logging.ERROR) -> Iterator[None]:
    """Raise a logger's level for the duration of a block, then put back what the user had.

    For warnings lingshu triggers on purpose: the tokenizer's "sequence longer than the
    maximum" (we cut windows ourselves), jieba's "Building prefix dict" on every initialisation.
    """
    lg = logging.getLogger(logger) if isinstance(logger, str) else logger
    old = lg.level
    lg.setLevel(level)
    try:
        yield
    finally:
        lg.setLevel(old)


def quiet_tokenizer_length_warning():
    return quieter("transformers.tokenization_utils_base")
