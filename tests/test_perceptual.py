"""The LPIPS-form perceptual distance against a loop-by-loop numpy reference, and its calibration.

The feature network is a small fixed random conv net (the face judge is not needed: the
distance takes any ``images -> [feature maps]`` callable).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from ganlab.metrics.perceptual import (
    Calibration,
    PerceptualDistance,
    calibrate_perceptual_distance,
    translate_images,
    unit_normalize,
)
from ganlab.metrics.validate import DtypeError


class TinyNet(nn.Module):
    """Three stages (16 x 16, 8 x 8, 4 x 4 for 16 px input), fixed random weights."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.s1 = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.s2 = nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
        self.s3 = nn.Sequential(nn.Conv2d(8, 5, 3, stride=2, padding=1), nn.ReLU())

    def multilayer_features(self, x):
        f1 = self.s1(x)
        f2 = self.s2(f1)
        return [f1, f2, self.s3(f2)]


@pytest.fixture(scope="module")
def net():
    return TinyNet().eval()


def smooth_images(n, size=16, seed=0):
    """Smooth random images in [-1, 1]: upsampled 4 x 4 noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)


def reference_distance(maps_x, maps_y, weights=None):
    """LPIPS written out: loops over images, layers and positions, numpy float64."""
    n = maps_x[0].shape[0]
    out = np.zeros(n)
    for i in range(n):
        for layer_index, (fx, fy) in enumerate(zip(maps_x, maps_y)):
            fx, fy = fx[i].double().numpy(), fy[i].double().numpy()
            c, h, w = fx.shape
            w_l = (
                np.ones(c)
                if weights is None
                else np.asarray(weights[layer_index], dtype=np.float64)
            )
            layer = 0.0
            for r in range(h):
                for s in range(w):
                    u = fx[:, r, s] / (np.sqrt(np.sum(fx[:, r, s] ** 2)) + 1e-10)
                    v = fy[:, r, s] / (np.sqrt(np.sum(fy[:, r, s] ** 2)) + 1e-10)
                    layer += np.sum(w_l * (u - v) ** 2)
            out[i] += layer / (h * w)
    return out


@torch.no_grad()
def test_matches_the_loop_reference_uniform_and_learned_weights(net):
    x, y = smooth_images(4, seed=1), smooth_images(4, seed=2)
    ref = reference_distance(net.multilayer_features(x), net.multilayer_features(y))
    ours = PerceptualDistance(net.multilayer_features)(x, y)
    assert ours.shape == (4,)
    np.testing.assert_allclose(ours.double().numpy(), ref, rtol=1e-5)

    rng = np.random.default_rng(0)
    weights = [rng.uniform(0, 2, size=c) for c in (6, 8, 5)]
    ref_w = reference_distance(net.multilayer_features(x), net.multilayer_features(y), weights)
    ours_w = PerceptualDistance(net.multilayer_features, weights=weights)(x, y)
    np.testing.assert_allclose(ours_w.double().numpy(), ref_w, rtol=1e-5)
    assert not np.allclose(ref, ref_w)  # the weights did change the value


@torch.no_grad()
def test_properties_zero_symmetric_bounded_and_monotone_in_change(net):
    dist = PerceptualDistance(net.multilayer_features)
    x, y = smooth_images(6, seed=3), smooth_images(6, seed=4)
    assert torch.equal(dist(x, x), torch.zeros(6))
    torch.testing.assert_close(dist(x, y), dist(y, x))
    assert (dist(x, y) > 0).all() and (dist(x, y) <= 4 * 3).all()  # each layer in [0, 4]
    # a tiny change is near zero, and a larger change of the same direction scores higher
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    small, large = dist(x, x + 1e-4 * noise), dist(x, x + 0.3 * noise)
    assert (small < 1e-3 * large).all()
    assert (small < dist(x, x + 1e-2 * noise)).all()


@torch.no_grad()
def test_vector_features_input_size_and_contrast_invariance(net):
    # (N, C) features count as 1 x 1 maps: d = ||u - v||^2 of the unit vectors
    dist = PerceptualDistance(lambda x: [x.flatten(1)])
    x, y = smooth_images(3, seed=6), smooth_images(3, seed=7)
    u, v = x.flatten(1), y.flatten(1)
    want = (u / u.norm(dim=1, keepdim=True) - v / v.norm(dim=1, keepdim=True)).pow(2).sum(1)
    torch.testing.assert_close(dist(x, y), want)
    # a positively scaled feature vector has the same direction: d ~ 0 (LPIPS's normalisation)
    assert dist(x, 0.5 * x).abs().max() < 1e-10
    # input_size resizes first: 32 px inputs give the distance of their 16 px versions
    big_x, big_y = smooth_images(3, size=32, seed=6), smooth_images(3, size=32, seed=7)
    down = lambda t: torch.nn.functional.interpolate(
        t, size=16, mode="bilinear", align_corners=False, antialias=True
    )
    sized = PerceptualDistance(net.multilayer_features, input_size=16)
    plain = PerceptualDistance(net.multilayer_features)
    torch.testing.assert_close(sized(big_x, big_y), plain(down(big_x), down(big_y)))
    assert sized.normalized_features(big_x)[0].shape == (3, 6, 16, 16)


def test_unit_normalize_and_bad_inputs(net):
    f = torch.randn(2, 4, 3, 3)
    norms = unit_normalize(f).pow(2).sum(1).sqrt()
    torch.testing.assert_close(norms, torch.ones(2, 3, 3))
    assert torch.equal(unit_normalize(torch.zeros(1, 4, 2, 2)), torch.zeros(1, 4, 2, 2))
    dist = PerceptualDistance(net.multilayer_features)
    x = smooth_images(2)
    with pytest.raises(ValueError, match="pairs of images of one shape"):
        dist(x, x[:1])
    with pytest.raises(DtypeError, match="floating point"):
        dist(x.to(torch.uint8), x.to(torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        dist(x[0], x[0])
    with pytest.raises(TypeError, match="list of feature maps"):
        PerceptualDistance(lambda t: t)(x, x)  # a tensor, not a list
    with pytest.raises(ValueError, match="weights\\[1\\] has 3 entries, layer 1 has 8"):
        PerceptualDistance(net.multilayer_features, weights=[np.ones(6), np.ones(3), np.ones(5)])(
            x, x
        )
    with pytest.raises(ValueError, match="2 weight vectors for 3 feature layers"):
        PerceptualDistance(net.multilayer_features, weights=[np.ones(6), np.ones(8)])(x, x)
    with pytest.raises(ValueError, match=">= 0"):
        PerceptualDistance(net.multilayer_features, weights=[-np.ones(6)])
    with pytest.raises(TypeError, match="callable"):
        PerceptualDistance("vgg")


def test_translate_images_moves_content_and_repeats_the_edge():
    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4)
    right = translate_images(x, dx=1)
    assert torch.equal(right[..., 1:], x[..., :-1]) and torch.equal(right[..., 0], x[..., 0])
    down = translate_images(x, dy=1)
    assert torch.equal(down[..., 1:, :], x[..., :-1, :]) and torch.equal(
        down[..., 0, :], x[..., 0, :]
    )
    left_up = translate_images(x, dx=-1, dy=-1)
    assert torch.equal(left_up[..., :-1, :-1], x[..., 1:, 1:])
    with pytest.raises(ValueError, match="smaller than the image"):
        translate_images(x, dx=4)


def test_calibration_by_hand_with_pixel_mse():
    x = smooth_images(5, seed=8)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    change = np.array([0.5, 0.1, 0.9, 0.3, 0.7])
    b = x + torch.as_tensor(change, dtype=torch.float32)[:, None, None, None] * noise
    mse = lambda p, q: (p - q).pow(2).mean(dim=(1, 2, 3))
    cal = calibrate_perceptual_distance(mse, x, b, change, batch=2)
    assert isinstance(cal, Calibration) and (cal.pairs, cal.shift_images) == (5, 5)
    d = mse(x, b).numpy()
    assert cal.spearman == pytest.approx(scipy.stats.spearmanr(d, change).statistic)
    assert cal.spearman > 0.8  # noise of growing amplitude
    # shift and unrelated distances by hand: right and down one pixel, x_{i-1} as "other"
    shifted_right = torch.cat([x[..., :1], x[..., :-1]], dim=-1)
    shifted_down = torch.cat([x[..., :1, :], x[..., :-1, :]], dim=-2)
    want_shift = (mse(x, shifted_right).mean() + mse(x, shifted_down).mean()) / 2
    want_other = mse(x, x[[4, 0, 1, 2, 3]]).mean()
    assert cal.shift_distance == pytest.approx(want_shift.item(), rel=1e-5)
    assert cal.unrelated_distance == pytest.approx(want_other.item(), rel=1e-5)
    assert cal.shift_ratio == pytest.approx(cal.pixel_shift_ratio, rel=1e-5)  # d is pixel MSE
    assert "Spearman" in cal.describe() and cal.as_dict()["pairs"] == 5
    reverse = calibrate_perceptual_distance(mse, x, b, -change)
    assert reverse.spearman == pytest.approx(-cal.spearman)
    with pytest.raises(ValueError, match="not all equal"):
        calibrate_perceptual_distance(mse, x, b, np.ones(5))
    with pytest.raises(ValueError, match="one size per pair"):
        calibrate_perceptual_distance(mse, x, b, change[:4])


@torch.no_grad()
def test_calibration_of_the_perceptual_distance_on_growing_noise(net):
    x = smooth_images(12, seed=10)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(11))
    change = np.linspace(0.01, 0.5, 12)
    b = x + torch.as_tensor(change, dtype=torch.float32)[:, None, None, None] * noise
    cal = calibrate_perceptual_distance(PerceptualDistance(net.multilayer_features), x, b, change)
    assert cal.spearman > 0.9
    assert 0 < cal.shift_distance < cal.unrelated_distance
