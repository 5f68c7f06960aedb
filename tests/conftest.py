import os

import pytest
import torch

os.environ.setdefault("GANLAB_PROFILE", "smoke")


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
    yield
