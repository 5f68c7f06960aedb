"""``python -m ganlab.experiments.seed_variation``: where an AttnGAN's samples of a caption
stop varying, stage by stage."""

from __future__ import annotations

import pytest
import torch

from ganlab.cli import main as ganlab
from ganlab.experiments.seed_variation import first_stages, main, seed_variation
from ganlab.models import attngan as M
from ganlab.text.train import load_encoders

CAPTIONS = ["a red bird with a white belly", "this bird has blue wings", "a small yellow bird"]


def _generator() -> M.Generator:
    torch.manual_seed(0)
    return M.Generator(ngf=4, base_size=8, num_stages=3).eval()


def test_every_stage_is_measured_against_the_caption_scale():
    out = seed_variation(_generator(), CAPTIONS, seed=1, text_encoder=load_encoders("damsm")[0])
    assert [s["size"] for s in out["stages"]] == [8, 16, 32] and out["n_captions"] == 3
    for s in out["stages"]:
        assert s["seeds"] > 0 and s["captions"] > 0
    assert out["last"]["seeds"] == out["stages"][-1]["seeds"]
    assert out["last"]["z"] > 0 and out["last"]["ca"] > 0


def test_a_generator_blind_to_z_shows_no_z_variation():
    """Zero the first FC's z columns ([c, z] is its input): a new z must change nothing,
    while a new CA sample still does."""
    G = _generator()
    with torch.no_grad():
        G.init_stage.fc[0].weight[:, G.c_dim :] = 0
    out = seed_variation(G, CAPTIONS, text_encoder=load_encoders("damsm")[0])
    assert out["last"]["z"] == 0.0 and out["last"]["ca"] > 0


def test_the_command_reads_a_run_and_refuses_a_missing_file(tmp_path, capsys):
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "1", "--out", str(tmp_path)]
    assert ganlab(argv) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "generator.safetensors"), "--n", "4"]) == 0
    out = capsys.readouterr().out
    assert "16 px: seeds" in out and "64 px: seeds" in out and "new z alone" in out
    assert main([str(tmp_path / "generator.safetensors"), "--n", "4", "--fd", "8"]) == 0
    out = capsys.readouterr().out
    assert "judge FD by stage (n = 8 training captions): 16 px " in out and "64 px " in out
    assert main([str(tmp_path / "missing.safetensors")]) == 2
    assert main([str(tmp_path / "generator.safetensors"), "--n", "1"]) == 2


def test_first_stages_cuts_the_generator_after_stage_k():
    """The cut copy draws exactly the full generator's first k images; G is untouched."""
    G = _generator()
    feats = load_encoders("damsm")[0](CAPTIONS)
    z = G.sample_z(3, generator=torch.Generator().manual_seed(0))
    text = (feats.sentence, feats.words, feats.padding)
    full = G(z, *text, torch.Generator().manual_seed(1))[0]
    for k in (1, 2):
        head = first_stages(G, k)
        images, maps, _, _ = head(z, *text, torch.Generator().manual_seed(1))
        assert len(images) == k and len(maps) == k - 1 and head.image_sizes == [8, 16][:k]
        assert torch.equal(images[-1], full[k - 1])
    assert G.num_stages == 3 and len(G.stages) == 2
    with pytest.raises(ValueError, match="cannot keep 4"):
        first_stages(G, 4)
    with pytest.raises(ValueError, match="k \\(stages to keep\\)"):
        first_stages(G, 0)
