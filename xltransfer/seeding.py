"""One seed for everything a piece draws at random, so the same grid trains the same bytes.

Heads, adapters and generators draw their initial weights from the global generators of torch
(and some libraries draw from numpy's or Python's) the moment they are created, which is before
the training loop seeds anything. Left alone, torch seeds itself differently in every process,
and two runs of one grid store different pieces. The executor calls ``seed_everything`` with the
piece's seed right before the piece is built, and with the cell's seed before a cell predicts.

What a process loads once and caches (the backbone, whose flexible MLM head is built with torch's
generator as ``adapters`` loads a static checkpoint) loads inside ``rng_untouched``: the first piece a
process trains draws what it would draw had the backbone been loaded before, so a piece's bytes
depend on its key only, not on what its process did before it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (torch's CUDA ones included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def rng_untouched() -> Iterator[None]:
    """Run the block and put Python's, numpy's and torch's global generators (CUDA's included) back
    as they were: whatever it draws leaves no trace on what is drawn after it."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
