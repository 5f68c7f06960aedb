"""Standing BatchNorm statistics: recalibrated buffers equal the statistics of the batches."""

import pytest
import torch
from torch import nn

from ganlab.train.ema import recalibrate_batchnorm


def test_recalibrated_statistics_are_the_batches_average():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    net[1].running_mean.fill_(7.0)  # stale statistics, as an EMA copy would carry
    batches = [(torch.randn(16, 3) + i,) for i in range(3)]
    recalibrate_batchnorm(net, batches)
    with torch.no_grad():
        h = torch.cat([net[0](x) for (x,) in batches])
    assert torch.allclose(net[1].running_mean, h.mean(0), atol=1e-5)
    per_batch_var = torch.stack([net[0](x).var(0, unbiased=True) for (x,) in batches]).mean(0)
    assert torch.allclose(net[1].running_var, per_batch_var.detach(), atol=1e-4)
    assert not net.training and net[1].momentum == 0.1
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_batchnorm(net, [])
