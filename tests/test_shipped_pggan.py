"""The shipped PGGAN (cpu profile, grown 4 -> 32 px), re-measured on CPU with the face judge
and SWD, against what its manifest recorded at shipping time; and the stored growing vs
fixed-size comparison (``ganlab.experiments.pggan_growing``) read back for the paper's claim.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganlab.chapters import pggan as chapter
from ganlab.weights import HERE, manifest, verify_sha256

GROWING = Path(__file__).parents[1] / "book" / "figures" / "pggan_growing.json"
SHIPPED = (HERE / f"{chapter.SHIPPED}.safetensors").exists()
needs_weights = pytest.mark.skipif(
    not SHIPPED,
    reason="PGGAN weights not shipped yet: ganlab train pggan --profile cpu --out runs/pggan, "
    "then ganlab ship pggan runs/pggan --n 1000",
)
needs_comparison = pytest.mark.skipif(
    not GROWING.exists(),
    reason="growing vs fixed not stored yet: python -m ganlab.experiments.pggan_growing train, "
    "then ... evaluate",
)


@pytest.fixture(scope="module")
def shipped():
    return chapter.load_generator()


@pytest.fixture(scope="module")
def measured(shipped):
    G, meta = shipped
    return chapter.CHAPTER.evaluate_generator(G, meta, n=chapter.RECHECK_N)


@needs_weights
def test_checksum_and_manifest():
    verify_sha256(chapter.SHIPPED)
    meta = manifest(chapter.SHIPPED)
    m = meta["manifest"]
    assert {"command", "steps", "seconds", "device", "metrics", "n_eval"} <= set(m)
    assert m["profile"] == "cpu" and m["steps"] == chapter.PROFILES["cpu"].loop.steps
    assert m["n_eval"] == 1000 and m["metrics"]["recheck"]["n"] == chapter.RECHECK_N
    assert (m["level"], m["alpha"], m["resolution_reached"]) == (3, 1.0, 32)
    assert meta["config"]["resolution"] == 32 and meta["config"]["start_level"] == 0
    cpu = chapter.PROFILES["cpu"].model  # the shipped run is the profile's model
    keys = ("fmap_base", "fmap_max", "phase_share")
    assert {k: meta["config"][k] for k in keys} == {k: getattr(cpu, k) for k in keys}


@needs_weights
def test_it_draws_at_every_level(shipped):
    G, meta = shipped
    strip = chapter.level_strip(G, 4, seed=0)
    assert strip.shape == (16, 3, 32, 32) and torch.isfinite(strip).all()
    x = chapter.generate(G, 8, seed=0)
    assert x.shape == (8, 3, 32, 32)
    assert x.std(0).mean() > 0.05  # the samples differ (no collapse to one image)


@needs_weights
def test_metrics_agree_with_the_manifest(measured):
    recorded = manifest(chapter.SHIPPED)["manifest"]["metrics"]["recheck"]
    got = measured
    fd = got["frechet_distance"]["value"]
    assert fd == pytest.approx(recorded["frechet_distance"], rel=0.02), (fd, recorded)
    swd = got["swd"]["generated"]
    for key, value in recorded["swd"]["generated"].items():
        assert swd[key] == pytest.approx(value, rel=0.02), (key, swd[key], value)


@needs_weights
def test_samples_beat_an_untrained_generator_and_sit_above_real_vs_real(measured):
    """The shipped G is far from the untrained floor and (honestly) not at the real floor."""
    fd = measured["frechet_distance"]
    untrained = chapter.PGGANRecipe(**_arch()).generator_spec().build().eval()
    meta = {"config": manifest(chapter.SHIPPED)["config"]}
    floor = chapter.CHAPTER.evaluate_generator(untrained, meta, n=200)["frechet_distance"]["value"]
    assert fd["real_vs_real"] < fd["value"] < 0.5 * floor, (fd, floor)
    swd = measured["swd"]
    assert swd["generated"]["SWDx1e3_avg"] > swd["real_vs_real"]["SWDx1e3_avg"]


def _arch() -> dict:
    cfg = manifest(chapter.SHIPPED)["config"]
    keys = ("resolution", "fmap_base", "fmap_max", "latent_size", "phase_share", "steps")
    return {k: cfg[k] for k in keys}


def _final(run: dict) -> dict:
    return run["snapshots"][-1]


@needs_comparison
def test_the_stored_comparison_has_equal_budgets():
    result = json.loads(GROWING.read_text())
    growing, fixed = result["runs"]["growing"], result["runs"]["fixed"]
    t_g, t_f = _final(growing)["cpu_seconds"], _final(fixed)["cpu_seconds"]
    assert abs(t_g - t_f) < 0.1 * max(t_g, t_f), (t_g, t_f)  # the same CPU time
    assert _final(growing)["level"] == _final(fixed)["level"] == 3  # both end at 32 px
    levels = [s["level"] for s in growing["snapshots"]]
    assert levels[0] == 0 and levels == sorted(levels), levels  # it really grew from 4 px
    assert {s["level"] for s in fixed["snapshots"]} == {3}


@needs_comparison
def test_growing_beats_fixed_size_at_the_same_cpu_time():
    """The paper's claim (Sec. 2, Fig. 4) at this scale. If a stored run does not reproduce
    it, keep this as a strict xfail with the lecture's diagnosis, never a looser bound."""
    result = json.loads(GROWING.read_text())
    growing, fixed = (_final(result["runs"][k]) for k in ("growing", "fixed"))
    assert growing["frechet_distance"] < fixed["frechet_distance"], (growing, fixed)
    assert growing["swd"]["SWDx1e3_avg"] < fixed["swd"]["SWDx1e3_avg"], (growing, fixed)
    # and not by luck at the last snapshot: ahead at every snapshot of the run's second half
    g, f = (result["runs"][k]["snapshots"] for k in ("growing", "fixed"))
    half = len(g) // 2
    for a, b in zip(g[half:], f[half:]):
        assert a["frechet_distance"] < b["frechet_distance"], (a, b)
        assert a["swd"]["SWDx1e3_avg"] < b["swd"]["SWDx1e3_avg"], (a, b)
