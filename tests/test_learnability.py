"""The learnability check runs end to end on a tiny budget: G, its moving averages, the ladder."""

from __future__ import annotations

import json

import pytest
import torch

from ganlab.experiments.learnability import EMAS, _load_generators, evaluate, figure, train


@pytest.mark.filterwarnings("ignore:feats_a has n")  # a tiny n: the bias warning is expected
def test_train_evaluate_and_figure_on_a_tiny_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    report = train("faces", minutes=1.0, out=run, n_real=32, cpu_minutes=0.02, width=8)
    assert report["steps"] >= 1 and report["ema_decays"] == EMAS
    assert json.loads((run / "train.json").read_text())["steps"] == report["steps"]
    nets = _load_generators(run)
    assert set(nets) == {"G", *EMAS}
    z = torch.zeros(2, 64)
    with torch.no_grad():
        assert nets["G_ema"](z).shape == (2, 3, 32, 32)
        # a moving average is not G itself after a step of training
        assert not torch.equal(nets["G"](z), nets["G_ema_0.99"](z))
    result = evaluate("faces", run, n=24)
    for key in ("real_vs_real", "real_half", "real_blur", "samples_G", "samples_untrained"):
        assert result[key] >= 0, key
    assert all(f"samples_{name}" in result for name in EMAS)
    assert result["real_vs_real"] < result["samples_untrained"]
    png = figure(run, tmp_path / "fig.png", which="G_ema_0.995")
    assert png.stat().st_size > 10_000
    with pytest.raises(ValueError, match="unknown world"):
        train("moons", minutes=0.01, out=run)
