"""The caption explorers draw at once, redraw on every change and report bad captions."""

from __future__ import annotations

import matplotlib
import torch
from torch import nn

from ganlab.viz.explorers import caption_explorer

matplotlib.use("Agg")


class _Encoder:
    """Stands in for a caption encoder: refuses captions without letters."""

    def __call__(self, captions):
        if not any(ch.isalpha() for ch in captions[0]):
            raise ValueError(f"caption 0 has no words: {captions[0]!r}")
        return type("Features", (), {"sentence": torch.zeros(len(captions), 4)})()


class _G(nn.Module):
    z_dim = 3

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, z, t):
        return torch.tanh(z[:, :1, None, None].expand(-1, 3, 8, 8) + self.bias)


def test_caption_explorer_draws_redraws_and_reports(capsys):
    # outside a kernel the Output widget captures nothing: display() prints to stdout
    box, seed, _ = caption_explorer(_G(), _Encoder(), n=4, caption="a red bird").children
    assert "Figure" in capsys.readouterr().out
    box.value = "???"
    assert "cannot encode this caption" in capsys.readouterr().out
    box.value = "a blue bird"
    seed.value = 3
    assert capsys.readouterr().out.count("Figure") == 2


def test_caption_explorer_draws_one_row_per_sample_label(capsys):
    def two_rows(t, s):
        z = torch.randn(len(t), 3, generator=torch.Generator().manual_seed(s))
        x = _G()(z, t)
        return {"small": x[..., ::2, ::2], "large": x}

    caption_explorer(_G(), _Encoder(), n=2, sample=two_rows)
    assert "Figure" in capsys.readouterr().out
