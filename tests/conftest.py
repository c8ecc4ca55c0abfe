"""Shared fixtures. Tests run on CPU with few threads so they stay fast and repeatable on 2 cores."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

# Under pytest-xdist (`make test` runs a worker per core, one test file each) each worker takes one thread.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads()))


def pytest_collection_finish(session):
    """Move everything the imports and the collection made (torch, matplotlib, pandas, every test module) out
    of the garbage collector's view: a full collection, which each cell's memory measurement starts with
    (``rad_bench.utils._release_free_heap``), then scans only what the tests themselves create."""
    import gc

    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
