"""The faces world's evaluation protocol (chapters 5, 6 and 8)."""

import warnings

import pytest
import torch

from ganlab.evaluation import faces as E


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small n: the rank-deficient Frechet warning
        yield


def test_ladder_orders_degradations():
    ref = E.real_reference(128, 32)
    ladder = ref["ladder"]
    assert ladder["real_vs_real"] < ladder["real_half"] < ladder["real_quarter"]
    assert ladder["real_vs_real"] < ladder["real_blur"]
    assert ref["images"].shape == (128, 3, 32, 32)


def test_evaluate_real_beats_noise_and_names_the_rung():
    real = E.real_faces(128, "test", 32, offset=256)
    good = E.evaluate_faces(None, images=real, size=32)

    def noise(k, seed):
        return torch.rand(k, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1

    bad = E.evaluate_faces(noise, n=128, size=32)
    assert good["frechet_distance"]["value"] < good["frechet_distance"]["real_half"]
    assert bad["frechet_distance"]["rung"] == "worse than real_quarter"
    assert bad["kid"]["value"] > 10 * abs(good["kid"]["value"])
    assert E.summary_metrics(good)["n"] == 128


def test_generate_all_hands_out_conditions_and_checks_shapes():
    seen = []

    def gen(cond, seed):
        seen.append((list(cond), seed))
        return torch.zeros(len(cond), 3, 16, 16)

    images = E.generate_all(gen, 300, seed=5, conditions=list(range(300)))
    assert images.shape == (300, 3, 16, 16)
    assert [s for _, s in seen] == [5, 6] and seen[1][0] == list(range(250, 300))
    with pytest.raises(ValueError, match="N, 3, H, W"):
        E.generate_all(lambda k, s: torch.zeros(k, 16, 16), 4, seed=0)


def test_domain_report_perfect_and_shuffled():
    data = E.load_faces(60, "test", 32, progress=False)
    x = data.float_images()
    same = E.domain_report(x, data.domains, x)
    assert same["domain_accuracy"] > 0.9
    assert same["pose_preservation"]["yaw"]["retained"] == pytest.approx(1.0)
    perm = torch.roll(torch.arange(60), 7)
    shuffled = E.domain_report(x[perm], data.domains, x)
    assert shuffled["pose_preservation"]["yaw"]["retained"] < 0.5


def test_degraded_rejects_unknown_rung():
    with pytest.raises(ValueError, match="half, quarter, blur"):
        E.degraded(torch.zeros(1, 3, 8, 8), "sharpen")
    assert E.rung(1.0, {"a": 2.0, "b": 3.0}) == "better than a"
    assert E.rung(2.5, {"a": 2.0, "b": 3.0}) == "between a and b"
