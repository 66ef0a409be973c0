"""Data layer: read, validate, write and describe corpora for NER, relation extraction and
sentence-pair classification.

Readers turn every supported layout (CLUENER, CMeEE, lingshu spans, CoNLL, plain text; CMeIE
triples; KUAKE-QQR pairs) into `lingshu.schema.Document`s with end-exclusive offsets, checking
each record and reporting problems with file, line and field; writers convert back, atomically.

Example::

    from lingshu.data import read_documents, write_documents, corpus_stats, format_stats

    res = read_documents("../shared/data/cmeee/CMeEE_dev.json")
    print(res.report.summary())
    print(format_stats(corpus_stats(res.documents)))
    write_documents(res.documents, "dev.conll", format="conll")

Layout: `base` (Format, checks, reports, JSON walkers, record helpers), one module per format
(`cluener`, `cmeee`, `spans`, `conll`, `plain`, `cmeie`, `pairs`: reader and writer), and
`registry` (FORMATS, detection, read/write entry points), which imports the formats and which
none of them imports.
"""

from lingshu.data.registry import (
    FORMATS,
    Format,
    ReadResult,
    WriteSummary,
    detect_format,
    iter_documents,
    read_documents,
    write_documents,
)
from lingshu.data.report import DataError, Problem, ValidationReport
from lingshu.data.spo_schema import load_spo_schema, schema_coverage
from lingshu.data.stats import corpus_stats, format_stats

__all__ = [
    "FORMATS",
    "DataError",
    "Format",
    "Problem",
    "ReadResult",
    "ValidationReport",
    "WriteSummary",
    "corpus_stats",
    "detect_format",
    "format_stats",
    "iter_documents",
    "load_spo_schema",
    "read_documents",
    "schema_coverage",
    "write_documents",
]
