"""Minibatch standard deviation: values by hand, the official strided grouping, batch sizes."""

from __future__ import annotations

import math

import pytest
import torch

from ganlab.nn import MinibatchStdDev, minibatch_stddev

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def test_one_group_of_four_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64).reshape(4, 1, 1, 1)
    out = MinibatchStdDev()(x)  # group 4: mean 2.5, biased variance 1.25
    assert out.shape == (4, 2, 1, 1)
    torch.testing.assert_close(out[:, 0], x[:, 0])  # the input channels pass through
    torch.testing.assert_close(
        out[:, 1].flatten(), torch.full((4,), math.sqrt(1.25 + 1e-8), dtype=F64)
    )


def test_groups_are_strided_as_in_the_official_reshape():
    # N = 8, G = 4, M = 2: sample n is in group n % 2, so group 0 = samples 0, 2, 4, 6
    x = torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0, 1.0, 2.0, 1.0], dtype=F64).reshape(8, 1, 1, 1)
    out = minibatch_stddev(x, group_size=4)
    # group 0 = (0, 0, 2, 2): std 1; group 1 = (0, 0, 1, 1): std 0.5
    # (consecutive groups (0, 0, 0, 0), (2, 1, 2, 1) would give 0 and 0.5)
    want = torch.tensor([1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0, 0.5], dtype=F64)
    torch.testing.assert_close(out[:, 1].flatten(), want, rtol=0, atol=1e-7)


def test_average_over_channels_and_pixels_and_group_capped_by_batch():
    # N = 2 < 4: the group is min(4, 2) = 2; per element std over two samples = |a - b| / 2
    x = torch.zeros(2, 2, 1, 2, dtype=F64)
    x[1, 0, 0] = torch.tensor([2.0, 4.0])  # stds 1, 2
    x[1, 1, 0] = torch.tensor([6.0, 2.0])  # stds 3, 1
    out = minibatch_stddev(x)
    assert out.shape == (2, 3, 1, 2)
    torch.testing.assert_close(out[:, 2], torch.full((2, 1, 2), 1.75, dtype=F64), rtol=0, atol=1e-7)
    # two feature maps: channel groups {0}, {1} -> means 1.5 and 2
    out2 = minibatch_stddev(x, num_features=2)
    assert out2.shape == (2, 4, 1, 2)
    torch.testing.assert_close(out2[:, 2], torch.full((2, 1, 2), 1.5, dtype=F64), rtol=0, atol=1e-7)
    torch.testing.assert_close(out2[:, 3], torch.full((2, 1, 2), 2.0, dtype=F64), rtol=0, atol=1e-7)


def test_indivisible_batch_raises_a_named_error():
    with pytest.raises(ValueError, match=r"batch size 6 must be divisible by the group size"):
        minibatch_stddev(torch.zeros(6, 3, 4, 4))
    assert minibatch_stddev(torch.zeros(3, 3, 4, 4)).shape == (3, 4, 4, 4)  # one group of 3
    with pytest.raises(ValueError, match="num_features"):
        minibatch_stddev(torch.zeros(4, 3, 4, 4), num_features=2)


def test_bf16_in_bf16_out_and_gradients_flow():
    x = torch.randn(8, 3, 4, 4, requires_grad=True)
    minibatch_stddev(x)[:, 3].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert minibatch_stddev(x.detach().bfloat16()).dtype == torch.bfloat16
