"""Mode seeking (Mao et al. 2019): 1 / (image distance / code distance + eps) over the halves."""

from __future__ import annotations

import pytest
import torch

from ganlab.nn import mode_seeking_loss
from ganlab.nn.mode_seeking import EPS


def test_closed_form_over_the_two_halves():
    """Halves 0.5 apart in every pixel and 2 apart in every code dim: 1 / (0.25 + eps);
    identical halves (one image for two codes, a collapse) cost 1 / eps."""
    x = torch.zeros(4, 3, 2, 2)
    x[2:] = 0.5
    z = torch.zeros(4, 8)
    z[2:] = -2.0
    assert mode_seeking_loss(x, z).item() == pytest.approx(1 / (0.25 + EPS), rel=1e-6)
    same = torch.randn(2, 3, 2, 2).repeat(2, 1, 1, 1)
    assert mode_seeking_loss(same, torch.randn(4, 8)).item() == pytest.approx(1 / EPS)


def test_its_gradient_pushes_the_two_samples_of_a_condition_apart():
    x = torch.zeros(2, 1, 2, 2)
    x[1] = 0.1
    x.requires_grad_(True)
    mode_seeking_loss(x, torch.tensor([[0.0], [1.0]])).backward()
    assert (x.grad[0] > 0).all() and (x.grad[1] < 0).all()  # descent: x0 down, x1 up
    assert mode_seeking_loss(x.detach().bfloat16(), torch.ones(2, 1)).dtype == torch.float32


@pytest.mark.parametrize(
    "images,z,match",
    [
        (torch.zeros(3, 3, 2, 2), torch.ones(3, 4), "even batch"),
        (torch.zeros(4, 3, 2), torch.ones(4, 4), "images"),
        (torch.zeros(4, 3, 2, 2), torch.ones(2, 4), "one code per image"),
    ],
)
def test_bad_batches_are_refused_by_name(images, z, match):
    with pytest.raises(ValueError, match=match):
        mode_seeking_loss(images, z)
