"""The image metrics of chapters 5, 6 and 8 against direct reference implementations.

SWD (PGGAN), perceptual path length (StyleGAN), and the translation metrics (StarGAN v2:
diversity, domain accuracy, factor preservation). The references are written here with
plain numpy / scipy / Python loops, independently of the package's vectorised code.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch

from ganlab.metrics.swd import (
    extract_patches,
    laplacian_pyramid,
    pyr_up,
    sliced_wasserstein,
    sliced_wasserstein_distance,
    swd_resolutions,
)
from ganlab.metrics.validate import DtypeError


def smooth_images(n, size=32, seed=0, channels=3):
    """Smooth random images in [-1, 1]: bilinearly upsampled 4 x 4 noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, 4, 4, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------ SWD reference (numpy)
KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def ref_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """Laplacian pyramid with scipy's 'mirror' convolution (OpenCV's pyrDown / pyrUp)."""
    k = KERNEL[None, None]

    def down(t):
        return scipy.ndimage.convolve(t, k, mode="mirror")[:, :, ::2, ::2]

    def up(t):
        z = np.zeros(t.shape[:2] + (2 * t.shape[2], 2 * t.shape[3]))
        z[:, :, ::2, ::2] = t
        return scipy.ndimage.convolve(z, 4 * k, mode="mirror")

    gauss = [x]
    for _ in range(levels - 1):
        gauss.append(down(gauss[-1]))
    return [gauss[i] - up(gauss[i + 1]) for i in range(levels - 1)] + [gauss[-1]]


def ref_swd(a: np.ndarray, b: np.ndarray, per_image, repeats, dirs_per_repeat, seed):
    """The whole protocol with loops, drawing from the rng in the documented order."""
    rng = np.random.default_rng(seed)
    n, c, s, _ = a.shape
    resolutions = []
    while s >= 16:
        resolutions.append(s)
        s //= 2
    centres = {
        key: [rng.integers(3, r - 3, size=(n * per_image, 2)) for r in resolutions]
        for key in ("a", "b")
    }
    pyramids = {"a": ref_pyramid(a, len(resolutions)), "b": ref_pyramid(b, len(resolutions))}
    out = {}
    for k, res in enumerate(resolutions):
        sets = {}
        for key in ("a", "b"):
            desc = np.zeros((n * per_image, c, 7, 7))
            for m, (row, col) in enumerate(centres[key][k]):
                img = m // per_image
                for dr in range(7):
                    for dc in range(7):
                        desc[m, :, dr, dc] = pyramids[key][k][img, :, row - 3 + dr, col - 3 + dc]
            for ch in range(c):
                values = desc[:, ch]
                desc[:, ch] = (values - values.mean()) / values.std()
            sets[key] = desc.reshape(len(desc), -1)
        per_repeat = []
        for _ in range(repeats):
            dirs = rng.standard_normal((c * 49, dirs_per_repeat))
            dirs /= np.linalg.norm(dirs, axis=0)
            gaps = [
                np.mean(np.abs(np.sort(sets["a"] @ v) - np.sort(sets["b"] @ v))) for v in dirs.T
            ]
            per_repeat.append(np.mean(gaps))
        out[f"SWDx1e3_{res}"] = 1e3 * np.mean(per_repeat)
    out["SWDx1e3_avg"] = np.mean(list(out.values()))
    return out


def test_laplacian_pyramid_matches_scipy_mirror_and_reconstructs():
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)).double()
    ours = laplacian_pyramid(x, 2)
    ref = ref_pyramid(x.numpy(), 2)
    assert [tuple(p.shape) for p in ours] == [(2, 3, 32, 32), (2, 3, 16, 16)]
    for p, r in zip(ours, ref):
        np.testing.assert_allclose(p.numpy(), r, atol=1e-12)
    np.testing.assert_allclose((pyr_up(ours[1]) + ours[0]).numpy(), x.numpy(), atol=1e-12)
    # the filter keeps a constant image constant, so its Laplacian band is 0
    flat = laplacian_pyramid(torch.full((1, 1, 32, 32), 0.3, dtype=torch.float64), 2)
    assert flat[0].abs().max() < 1e-12 and torch.allclose(flat[1], torch.tensor(0.3).double())
    assert swd_resolutions(64) == [64, 32, 16] and swd_resolutions(16) == [16]
    assert swd_resolutions(8) == []


def test_extract_patches_by_hand():
    level = torch.arange(2 * 1 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    centres = torch.tensor([[0, 3, 3], [1, 12, 8]])
    patches = extract_patches(level, centres)
    assert patches.shape == (2, 1, 7, 7)
    assert torch.equal(patches[0, 0], level[0, 0, 0:7, 0:7])
    assert torch.equal(patches[1, 0], level[1, 0, 9:16, 5:12])


def test_sliced_wasserstein_in_one_dimension_is_the_exact_w1():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200), rng.normal(0.5, 2.0, size=200)
    dirs = [torch.ones(1, 1), -torch.ones(1, 1)]  # the only unit "directions" in 1-D
    ours = sliced_wasserstein(torch.tensor(a)[:, None], torch.tensor(b)[:, None], dirs)
    assert ours == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-6)


def test_swd_matches_the_loop_reference():
    a, b = smooth_images(3, 32, seed=1), smooth_images(3, 32, seed=2)
    b = b + 0.05 * torch.randn(b.shape, generator=torch.Generator().manual_seed(3))
    kw = dict(nhoods_per_image=16, dir_repeats=2, dirs_per_repeat=8, seed=7)
    ours = sliced_wasserstein_distance(a, b, batch=2, **kw)  # batch 2: the pyramid in chunks
    ref = ref_swd(a.double().numpy(), b.double().numpy(), 16, 2, 8, seed=7)
    assert list(ours) == ["SWDx1e3_32", "SWDx1e3_16", "SWDx1e3_avg"]
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], rel=1e-4), key
    assert ours == sliced_wasserstein_distance(a, b, batch=256, **kw)  # batch-independent


def test_swd_sees_fine_noise_at_the_fine_level_and_ignores_scale():
    real, real2 = smooth_images(24, 32, seed=4), smooth_images(24, 32, seed=5)
    noisy = real2 + 0.2 * torch.randn(real2.shape, generator=torch.Generator().manual_seed(6))
    kw = dict(nhoods_per_image=32, dir_repeats=2, dirs_per_repeat=32)
    base = sliced_wasserstein_distance(real, real2, **kw)
    bad = sliced_wasserstein_distance(real, noisy, **kw)
    # pixel noise lives in the finest band: it raises SWD there and leaves the 16 px level
    assert bad["SWDx1e3_32"] > 2 * base["SWDx1e3_32"]
    assert bad["SWDx1e3_16"] == pytest.approx(base["SWDx1e3_16"], rel=0.05)
    # per-set normalisation: the pixel scale (0..255 vs [-1, 1]) does not matter
    scaled = sliced_wasserstein_distance(real * 127.5 + 127.5, noisy * 127.5 + 127.5, **kw)
    for key in bad:
        assert scaled[key] == pytest.approx(bad[key], rel=1e-3)


def test_swd_bad_inputs():
    x = smooth_images(2, 32)
    with pytest.raises(ValueError, match="the same N"):
        sliced_wasserstein_distance(x, x[:1])
    with pytest.raises(ValueError, match="square images of at least 16"):
        sliced_wasserstein_distance(x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match="square"):
        sliced_wasserstein_distance(x[..., :16], x[..., :16])
    with pytest.raises(DtypeError, match="floating point"):
        sliced_wasserstein_distance(x.to(torch.uint8), x.to(torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        sliced_wasserstein_distance(x * np.nan, x)


# ------------------------------------------------------------------ perceptual path length
def ref_slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The textbook formula (Shoemake 1985) on the unit vectors of a and b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    omega = np.arccos(np.clip(a @ b, -1, 1))
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def ref_draws(seed, num_samples, batch_size, z_dim, sampling):
    """The documented random draws: per batch z (2B, z_dim) then t (B,), float64."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for start in range(0, num_samples, batch_size):
        b = min(batch_size, num_samples - start)
        z = torch.randn(2 * b, z_dim, generator=g, dtype=torch.float64).numpy()
        t = (
            torch.rand(b, generator=g, dtype=torch.float64).numpy()
            if sampling == "full"
            else (np.zeros(b))
        )
        pairs += [(z[2 * i], z[2 * i + 1], t[i]) for i in range(b)]
    return pairs


def sq_l2(x, y):
    return (x - y).pow(2).flatten(1).sum(1)


class ToyStyleGenerator:
    """mapping: z -> w = tanh(M z) (B, 2, 4) (a per-layer w, as StyleGAN's dlatents);
    synthesis: w -> sin(A w) images (B, 1, 8, 8). Float64 so that the reference is exact."""

    def __init__(self, z_dim=4, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.m = torch.randn(z_dim, 8, generator=g, dtype=torch.float64)
        self.a = torch.randn(8, 64, generator=g, dtype=torch.float64)

    def mapping(self, z):
        return torch.tanh(z @ self.m).reshape(-1, 2, 4)

    def synthesis(self, w):
        return torch.sin(w.reshape(-1, 8) @ self.a).reshape(-1, 1, 8, 8)

    def np_mapping(self, z):
        return np.tanh(z @ self.m.numpy())

    def np_synthesis(self, w):
        return np.sin(w @ self.a.numpy())


@pytest.mark.parametrize("sampling", ["full", "end"])
def test_ppl_in_w_matches_a_per_sample_reference(sampling):
    from ganlab.metrics.ppl import path_length_samples, perceptual_path_length

    gen = ToyStyleGenerator()
    kw = dict(mapping=gen.mapping, synthesis=gen.synthesis, space="w", sampling=sampling)
    kw |= dict(num_samples=50, batch_size=16, crop=None, seed=3, dtype=torch.float64)
    ours = path_length_samples(sq_l2, 4, **kw)
    ref = []
    for z0, z1, t in ref_draws(3, 50, 16, 4, sampling):
        w0, w1 = gen.np_mapping(z0), gen.np_mapping(z1)
        x0 = gen.np_synthesis(w0 + (w1 - w0) * t)
        x1 = gen.np_synthesis(w0 + (w1 - w0) * (t + 1e-4))
        ref.append(np.sum((x0 - x1) ** 2) / 1e-8)
    np.testing.assert_allclose(ours, ref, rtol=1e-7)
    # percentiles of 50 values: 1st 'lower' = sorted[floor(0.49)] = the minimum, 99th
    # 'higher' = sorted[ceil(48.51)] = the maximum: at this n nothing is dropped
    assert perceptual_path_length(sq_l2, 4, **kw) == pytest.approx(np.mean(ref), rel=1e-7)


def test_ppl_in_z_matches_textbook_slerp_with_mapping_or_single_generator():
    from ganlab.metrics.ppl import path_length_samples

    gen = ToyStyleGenerator()
    kw = dict(space="z", num_samples=20, batch_size=8, crop=None, seed=5, dtype=torch.float64)
    ours = path_length_samples(sq_l2, 4, mapping=gen.mapping, synthesis=gen.synthesis, **kw)
    single = path_length_samples(sq_l2, 4, generator=lambda z: gen.synthesis(gen.mapping(z)), **kw)
    ref = []
    for z0, z1, t in ref_draws(5, 20, 8, 4, "full"):
        x0 = gen.np_synthesis(gen.np_mapping(ref_slerp(z0, z1, t)))
        x1 = gen.np_synthesis(gen.np_mapping(ref_slerp(z0, z1, t + 1e-4)))
        ref.append(np.sum((x0 - x1) ** 2) / 1e-8)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    np.testing.assert_array_equal(single, ours)


def test_slerp_and_lerp():
    from ganlab.metrics.ppl import lerp, slerp

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    t = rng.uniform(size=5)
    ours = slerp(torch.tensor(a), torch.tensor(b), torch.tensor(t)[:, None]).numpy()
    for i in range(5):
        np.testing.assert_allclose(ours[i], ref_slerp(a[i], b[i], t[i]), atol=1e-12)
    ends = slerp(torch.tensor(a), torch.tensor(b), torch.tensor([[0.0], [1.0]] * 2 + [[0.0]]))
    np.testing.assert_allclose(ends[0].numpy(), a[0] / np.linalg.norm(a[0]), atol=1e-12)
    np.testing.assert_allclose(ends[1].numpy(), b[1] / np.linalg.norm(b[1]), atol=1e-12)
    w0, w1 = torch.tensor(a).reshape(5, 2, 3), torch.tensor(b).reshape(5, 2, 3)
    mixed = lerp(w0, w1, torch.tensor(t))
    np.testing.assert_allclose(mixed[2].numpy(), (w0[2] + t[2] * (w1[2] - w0[2])).numpy())


def test_ppl_crop_downsample_and_percentile_filter():
    from ganlab.metrics.ppl import crop_images, filtered_mean

    x = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 1, 64, 64)
    assert torch.equal(crop_images(x), x[:, :, 24:56, 16:48])  # c = 8: rows 3c..7c, cols 2c..6c
    assert torch.equal(crop_images(x, None), x)
    assert torch.equal(crop_images(x, (0.25, 0.75, 0.0, 0.5)), x[:, :, 16:48, 0:32])
    big = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    small = crop_images(big, None)  # 512 > 256: averaged over 2 x 2 boxes
    assert small.shape == (1, 3, 256, 256)
    torch.testing.assert_close(small[0, :, 3, 5], big[0, :, 6:8, 10:12].mean(dim=(1, 2)))
    assert crop_images(big).shape == (1, 3, 256, 256)  # the stylegan crop of 512 is 256
    with pytest.raises(ValueError, match="top < bottom"):
        crop_images(x, (0.5, 0.25, 0.0, 1.0))
    with pytest.raises(ValueError, match="stylegan"):
        crop_images(x, "face")

    values = np.random.default_rng(1).permutation(np.arange(1.0, 301.0))  # 1 .. 300
    # lower 1st percentile of 300 values: index floor(0.01 * 299) = 2 -> 3;
    # higher 99th: index ceil(0.99 * 299) = 297 -> 298; keep 3 .. 298
    assert filtered_mean(values) == pytest.approx(np.arange(3.0, 299.0).mean())
    with pytest.raises(ValueError, match="finite"):
        filtered_mean([1.0, np.nan])


def test_ppl_guards():
    from ganlab.metrics.ppl import path_length_samples

    gen = ToyStyleGenerator()
    noisy = lambda w: gen.synthesis(w) + 1e-3 * torch.randn(len(w), 1, 8, 8, dtype=w.dtype)
    with pytest.raises(ValueError, match="same noise"):
        path_length_samples(
            sq_l2, 4, mapping=gen.mapping, synthesis=noisy, num_samples=4, dtype=torch.float64
        )
    with pytest.raises(ValueError, match='space="w" needs mapping'):
        path_length_samples(sq_l2, 4, generator=gen.synthesis, space="w")
    with pytest.raises(ValueError, match="sampling must be"):
        path_length_samples(sq_l2, 4, generator=gen.synthesis, space="z", sampling="mid")
    with pytest.raises(ValueError, match=r"must return \(N,\)"):
        path_length_samples(
            lambda x, y: sq_l2(x, y)[:1],
            4,
            mapping=gen.mapping,
            synthesis=gen.synthesis,
            num_samples=4,
            crop=None,
            dtype=torch.float64,
        )


def test_ppl_float32_networks_agree_with_float64():
    """Latents drawn and interpolated in float64: float32 networks lose only ~1e-5 here."""
    from ganlab.metrics.ppl import perceptual_path_length

    gen = ToyStyleGenerator()
    kw = dict(mapping=gen.mapping, synthesis=gen.synthesis, num_samples=64, crop=None)
    exact = perceptual_path_length(sq_l2, 4, dtype=torch.float64, **kw)
    gen.m, gen.a = gen.m.float(), gen.a.float()
    single = perceptual_path_length(sq_l2, 4, dtype=torch.float32, **kw)
    assert single == pytest.approx(exact, rel=1e-3)


# ------------------------------------------------------------------ translation (StarGAN v2)
class TinyJudge(torch.nn.Module):
    """Two conv stages with fixed random weights: a stand-in for the face judge."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.s1 = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
        self.s2 = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, 2, 1), torch.nn.ReLU())

    def multilayer_features(self, x):
        f1 = self.s1(x)
        return [f1, self.s2(f1)]


def test_diversity_matches_the_pairwise_loop_for_tensor_and_list_inputs():
    from ganlab.metrics.perceptual import PerceptualDistance
    from ganlab.metrics.translation import diversity_per_input, perceptual_diversity

    n, k = 3, 4
    outputs = smooth_images(n * k, 16, seed=12).reshape(n, k, 3, 16, 16)
    mse = lambda x, y: (x - y).pow(2).mean(dim=(1, 2, 3))
    ref = [
        np.mean(
            [
                mse(outputs[i, a][None], outputs[i, b][None]).item()
                for a in range(k)
                for b in range(a + 1, k)
            ]
        )
        for i in range(n)
    ]
    np.testing.assert_allclose(diversity_per_input(outputs, mse), ref, rtol=1e-6)
    as_list = [outputs[:, j] for j in range(k)]  # StarGAN v2's group_of_images
    assert perceptual_diversity(as_list, mse) == pytest.approx(np.mean(ref), rel=1e-6)
    # a PerceptualDistance takes the features-once path: same value as calling it per pair
    dist = PerceptualDistance(TinyJudge().multilayer_features)
    with torch.no_grad():
        pairwise = [
            np.mean(
                [
                    dist(outputs[i, a][None], outputs[i, b][None]).item()
                    for a in range(k)
                    for b in range(a + 1, k)
                ]
            )
            for i in range(n)
        ]
    np.testing.assert_allclose(diversity_per_input(outputs, dist), pairwise, rtol=1e-5)
    # a translator that ignores the style has diversity 0
    same = outputs[:, :1].expand(n, k, 3, 16, 16)
    assert perceptual_diversity(same, dist) == 0.0
    with pytest.raises(ValueError, match="K >= 2"):
        perceptual_diversity(outputs[:, :1], mse)
    with pytest.raises(TypeError, match="group_of_images"):
        perceptual_diversity("images", mse)


def test_domain_accuracy_and_confusion_by_hand():
    from ganlab.metrics.translation import domain_accuracy, domain_confusion

    targets = np.array([0, 0, 1, 1, 2, 2, 2])
    judged = np.array([0, 1, 1, 1, 2, 0, 2])
    assert domain_accuracy(judged, targets) == pytest.approx(5 / 7)
    logits = np.eye(3)[judged] * 4.0 - 1.0
    assert domain_accuracy(torch.tensor(logits), targets) == pytest.approx(5 / 7)
    want = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    np.testing.assert_array_equal(domain_confusion(judged, targets, 3), want)
    np.testing.assert_array_equal(domain_confusion(logits, targets, 3), want)
    with pytest.raises(ValueError, match="one column per domain"):
        domain_confusion(logits[:, :2], targets, 3)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        domain_confusion(judged, targets + 1, 3)


def test_factor_preservation_against_a_double_loop():
    from ganlab.metrics.translation import factor_preservation

    rng = np.random.default_rng(3)
    src = rng.uniform(-30, 30, size=(40, 2))  # yaw, pitch in degrees
    out = np.stack([src[:, 0] + rng.normal(0, 3, 40), rng.uniform(-30, 30, 40)], 1)
    res = factor_preservation(src, out, names=["yaw", "pitch"])
    for i, name in enumerate(["yaw", "pitch"]):
        s, o = src[:, i], out[:, i]
        chance = np.mean([abs(o[m] - s[n]) for n in range(40) for m in range(40) if m != n])
        mae = np.mean([abs(o[n] - s[n]) for n in range(40)])
        assert res[name]["mae"] == pytest.approx(mae)
        assert res[name]["mae_chance"] == pytest.approx(chance)
        assert res[name]["retained"] == pytest.approx(1 - mae / chance)
        assert res[name]["correlation"] == pytest.approx(scipy.stats.pearsonr(s, o).statistic)
        assert res[name]["n"] == 40
    assert res["yaw"]["retained"] > 0.8 and res["yaw"]["correlation"] > 0.95  # kept
    assert abs(res["pitch"]["retained"]) < 0.2 and abs(res["pitch"]["correlation"]) < 0.4  # lost
    exact = factor_preservation(src[:, 0], src[:, 0])["factor"]
    assert (exact["mae"], exact["retained"]) == (0.0, 1.0) and exact["correlation"] == 1.0
    constant = factor_preservation(src[:, 0], np.zeros(40))["factor"]
    assert np.isnan(constant["correlation"]) and constant["mae"] > 0
    with pytest.raises(ValueError, match="one shape"):
        factor_preservation(src, out[:10])
    with pytest.raises(ValueError, match="1 names for 2 factors"):
        factor_preservation(src, out, names=["yaw"])


def test_ppl_with_the_perceptual_distance_sees_the_cropped_face_region():
    from ganlab.metrics.perceptual import PerceptualDistance
    from ganlab.metrics.ppl import perceptual_path_length

    g = torch.Generator().manual_seed(1)
    lift = torch.randn(8, 3 * 16 * 16, generator=g) / 3
    mapping = lambda z: torch.tanh(z[:, :8])  # (B, 8)
    synthesis = lambda w: torch.tanh(w @ lift).reshape(-1, 3, 16, 16)
    judge = TinyJudge().eval()
    seen = []

    def features(x):
        seen.append(tuple(x.shape[-2:]))
        return judge.multilayer_features(x)

    dist = PerceptualDistance(features)
    kw = dict(mapping=mapping, synthesis=synthesis, num_samples=24, batch_size=12)
    value = perceptual_path_length(dist, 12, **kw)
    assert np.isfinite(value) and value > 0
    assert set(seen) == {(8, 8)}  # the StyleGAN crop of a 16 px image: rows 6..14, cols 4..12
    whole = perceptual_path_length(dist, 12, crop=None, **kw)
    assert seen[-1] == (16, 16) and whole != value
