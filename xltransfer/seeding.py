"""One seed for everything a piece draws at random, so the same grid trains the same bytes.

Heads, adapters and generators draw their initial weights from the global generators of torch
(and some libraries draw from numpy's or Python's) the moment they are created, which is before
the training loop seeds anything. Left alone, torch seeds itself differently in every process,
and two runs of one grid store different pieces. The executor calls ``seed_everything`` with the
piece's seed right before the piece is built, and with the cell's seed before a cell predicts.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (torch's CUDA ones included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
