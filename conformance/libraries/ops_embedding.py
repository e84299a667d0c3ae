"""Liger's (experimental) embedding: a gather forward, an atomic scatter-add backward.

Shapes (vocabulary, dim, tokens): "small" is 100 x 123 (a masked block of 128) looked up by 64 tokens, so
rows repeat; "liger" is a 32000 vocabulary (Llama) at dim 256, by 256 tokens (4096 x 32000 tables would
cost gigabytes with float64 references; the dim only sets the grid's second axis, in blocks of 128).
Tolerance: the forward is a copy (exact: 0 ulps). The backward adds each token's upstream gradient into its
row with tl.atomic_add in the table's dtype, in no fixed order: one rounding per addition, and with 64
tokens over 100 rows a row gets at most a handful: 8 ulps.
"""
from __future__ import annotations

import torch
from liger_kernel.ops.experimental.embedding import LigerEmbeddingFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn


def _inputs(shape, dtype, gen):
    vocab, dim, tokens = shape
    return {"table": randn((vocab, dim), dtype, gen), "index": torch.randint(0, vocab, (2, tokens // 2), generator=gen)}


EMBEDDING = LibraryOp(
    "embedding", _inputs,
    run=lambda table, index: LigerEmbeddingFunction.apply(table, index),
    reference=lambda table, index: torch.nn.functional.embedding(index, table),
    ulps={"f32": (0, 8), "bf16": (0, 8), "f16": (0, 8)},
    shapes={"small": (100, 123, 64), "liger": (32000, 256, 256)}, grads=("table",))

OPS = (EMBEDDING,)
