import os

import pytest
import torch

os.environ.setdefault("GANLAB_PROFILE", "smoke")

# Torch threads per test: OMP_NUM_THREADS when set (scripts/test.sh sets 1: pytest runs two
# workers on two cores, and more threads than cores make torch's threads wait on each other),
# else 2.
THREADS = int(os.environ.get("OMP_NUM_THREADS") or 2)


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(THREADS)
    yield
